// SPDX-License-Identifier: GPL-2.0-only
#include "xmledit.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "util.h"

#define XML_SPACE " \t\r\n"

/* The parsed document and the nodes one edit is about. */
struct located {
	xmlDocPtr doc;
	xmlNodePtr disk;
	xmlNodePtr driver;      /* NULL when the disk has none */
};

/* A start tag as written in the text. */
struct tag {
	const char *name, *name_end;
	const char *attrs_end;  /* just after the last attribute (or the name) */
	const char *end;        /* just after the closing '>' */
	const char *io;         /* value of io= inside its quotes, or NULL */
	size_t io_len;
	char quote;             /* quote of the last attribute, '\'' if none */
};

__attribute__((format(printf, 3, 4)))
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

void xml_driver_free(struct xml_driver *d)
{
	free(d->name);
	free(d->type);
	free(d->cache);
	memset(d, 0, sizeof(*d));
}

/* The XML is data: no network, no DTD loading, no entity substitution, and
 * libxml2 reports nothing on stderr itself. */
static xmlDocPtr parse(const char *xml, char *err, size_t errlen)
{
	xmlParserCtxtPtr ctxt = xmlNewParserCtxt();
	size_t len = strlen(xml);
	xmlDocPtr doc = NULL;

	if (!ctxt) {
		fail(err, errlen, "cannot create an XML parser");
		goto out;
	}
	if (len > INT_MAX) {
		fail(err, errlen, "domain XML is too large (%zu bytes)", len);
		goto out;
	}
	doc = xmlCtxtReadMemory(ctxt, xml, (int)len, NULL, NULL,
				XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (!doc) {
		xmlErrorPtr e = xmlCtxtGetLastError(ctxt);
		const char *msg = e && e->message ? e->message : "malformed";

		fail(err, errlen, "domain XML does not parse: line %d: %.*s",
		     e ? e->line : 0, (int)strcspn(msg, "\n"), msg);
		goto out;
	}
	/* libvirt never writes one; without it no entity can hide markup. */
	if (doc->intSubset || doc->extSubset) {
		fail(err, errlen, "domain XML has a DOCTYPE; refusing to edit it");
		xmlFreeDoc(doc);
		doc = NULL;
	}
out:
	xmlFreeParserCtxt(ctxt);
	return doc;
}

/* First child element called name, in no namespace (libvirt's own). */
static xmlNodePtr child(xmlNodePtr parent, const char *name)
{
	for (xmlNodePtr n = xmlFirstElementChild(parent); n; n = xmlNextElementSibling(n))
		if (!n->ns && xmlStrEqual(n->name, BAD_CAST name))
			return n;
	return NULL;
}

static bool disk_has_target(xmlNodePtr disk, const char *target)
{
	xmlNodePtr t = child(disk, "target");
	xmlChar *dev = t ? xmlGetNoNsProp(t, BAD_CAST "dev") : NULL;
	bool match = dev && xmlStrEqual(dev, BAD_CAST target);

	xmlFree(dev);
	return match;
}

static int locate(const char *xml, const char *target, struct located *loc,
		  char *err, size_t errlen)
{
	xmlNodePtr root, devices, n;
	int ret = -1;

	memset(loc, 0, sizeof(*loc));
	loc->doc = parse(xml, err, errlen);
	if (!loc->doc)
		return -1;
	root = xmlDocGetRootElement(loc->doc);
	/* libvirt's status XML holds the domain inside <domstatus> */
	if (root && !root->ns && xmlStrEqual(root->name, BAD_CAST "domstatus"))
		root = child(root, "domain");
	if (!root || root->ns || !xmlStrEqual(root->name, BAD_CAST "domain")) {
		fail(err, errlen, "not a libvirt domain XML: root element is not <domain>");
		goto out;
	}
	devices = child(root, "devices");
	for (n = devices ? xmlFirstElementChild(devices) : NULL; n; n = xmlNextElementSibling(n)) {
		if (n->ns || !xmlStrEqual(n->name, BAD_CAST "disk") || !disk_has_target(n, target))
			continue;
		if (loc->disk) {
			fail(err, errlen, "more than one disk has target dev='%s'", target);
			goto out;
		}
		loc->disk = n;
	}
	if (!loc->disk) {
		fail(err, errlen, "no disk with target dev='%s'", target);
		goto out;
	}
	loc->driver = child(loc->disk, "driver");
	ret = 0;
out:
	if (ret) {
		xmlFreeDoc(loc->doc);
		loc->doc = NULL;
	}
	return ret;
}

static char *attr(xmlNodePtr node, const char *name)
{
	xmlChar *v = xmlGetNoNsProp(node, BAD_CAST name);
	char *s = xstrdup((const char *)v);

	xmlFree(v);
	return s;
}

static int read_driver(xmlNodePtr driver, const char *target, struct xml_driver *out,
		       char *err, size_t errlen)
{
	char *io;
	int ret = 0;

	memset(out, 0, sizeof(*out));
	if (!driver)
		return 0;
	out->present = true;
	out->name = attr(driver, "name");
	out->type = attr(driver, "type");
	out->cache = attr(driver, "cache");
	io = attr(driver, "io");
	if (!io_mode_parse(io, &out->io)) {
		ret = fail(err, errlen, "disk %s has io='%s', which aioguard does not know",
			   target, io);
		xml_driver_free(out);
	}
	free(io);
	return ret;
}

int xmledit_get_driver(const char *xml, const char *target, struct xml_driver *out,
		       char *err, size_t errlen)
{
	struct located loc;
	int ret;

	memset(out, 0, sizeof(*out));
	if (locate(xml, target, &loc, err, errlen) < 0)
		return -1;
	ret = read_driver(loc.driver, target, out, err, errlen);
	xmlFreeDoc(loc.doc);
	return ret;
}

char *xmledit_get_alias(const char *xml, const char *target, char *err, size_t errlen)
{
	struct located loc;
	xmlNodePtr alias;
	char *name = NULL;

	if (locate(xml, target, &loc, err, errlen) < 0)
		return NULL;
	alias = child(loc.disk, "alias");
	name = alias ? attr(alias, "name") : NULL;
	if (!name)
		fail(err, errlen, "disk %s has no <alias> (is the domain running?)", target);
	xmlFreeDoc(loc.doc);
	return name;
}

char *xmledit_get_source(const char *xml, const char *target)
{
	struct located loc;
	char err[256];
	xmlNodePtr src;
	char *path = NULL;

	if (locate(xml, target, &loc, err, sizeof(err)) < 0)
		return NULL;
	src = child(loc.disk, "source");
	if (src)
		path = attr(src, "file");
	if (src && !path)
		path = attr(src, "dev");
	xmlFreeDoc(loc.doc);
	return path;
}

/* <source><privateData><nodenames><nodename type=…> of one layer. */
static char *layer_nodename(xmlNodePtr layer, const char *type)
{
	xmlNodePtr src = child(layer, "source"), pd = src ? child(src, "privateData") : NULL;
	xmlNodePtr names = pd ? child(pd, "nodenames") : NULL;

	for (xmlNodePtr n = names ? xmlFirstElementChild(names) : NULL; n; n = xmlNextElementSibling(n)) {
		char *t = attr(n, "type");
		bool match = t && !strcmp(t, type);

		free(t);
		if (match)
			return attr(n, "name");
	}
	return NULL;
}

void xmledit_chain_free(struct xml_chain *c)
{
	for (int i = 0; i < c->n; i++) {
		free(c->format[i]);
		free(c->storage[i]);
	}
	c->n = 0;
}

int xmledit_get_chain(const char *status_xml, const char *target, struct xml_chain *out,
		      char *err, size_t errlen)
{
	struct located loc;
	xmlNodePtr layer;
	int ret = 0;

	memset(out, 0, sizeof(*out));
	if (locate(status_xml, target, &loc, err, errlen) < 0)
		return -1;
	/* the chain ends at an empty <backingStore/> (or none) */
	for (layer = loc.disk; layer && child(layer, "source") && ret == 0; layer = child(layer, "backingStore")) {
		if (out->n == XMLEDIT_MAX_LAYERS) {
			ret = fail(err, errlen, "disk %s: backing chain longer than %d layers", target, XMLEDIT_MAX_LAYERS);
			break;
		}
		out->format[out->n] = layer_nodename(layer, "format");
		out->storage[out->n] = layer_nodename(layer, "storage");
		if (!out->storage[out->n++])
			ret = fail(err, errlen, "disk %s: layer %d has no node names in libvirt's status XML (libvirt not in -blockdev mode?)",
				   target, out->n - 1);
	}
	if (ret == 0 && out->n == 0)
		ret = fail(err, errlen, "disk %s has no source in libvirt's status XML", target);
	if (ret < 0)
		xmledit_chain_free(out);
	xmlFreeDoc(loc.doc);
	return ret < 0 ? -1 : out->n;
}

char *xmledit_target_of_node(const char *status_xml, const char *storage)
{
	char err[256];
	xmlDocPtr doc = parse(status_xml, err, sizeof(err));
	xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL, devices, t;
	char *found = NULL;

	if (root && !root->ns && xmlStrEqual(root->name, BAD_CAST "domstatus"))
		root = child(root, "domain");
	devices = root ? child(root, "devices") : NULL;
	for (xmlNodePtr d = devices ? xmlFirstElementChild(devices) : NULL; d && !found; d = xmlNextElementSibling(d)) {
		if (d->ns || !xmlStrEqual(d->name, BAD_CAST "disk") || !(t = child(d, "target")))
			continue;
		for (xmlNodePtr layer = d; layer && !found; layer = child(layer, "backingStore")) {
			char *name = layer_nodename(layer, "storage");

			if (name && !strcmp(name, storage))
				found = attr(t, "dev");
			free(name);
		}
	}
	xmlFreeDoc(doc);
	return found;
}

static xmlNodePtr next_element(xmlNodePtr cur)
{
	xmlNodePtr next = xmlFirstElementChild(cur);

	for (; !next && cur && cur->type == XML_ELEMENT_NODE; cur = cur->parent)
		next = xmlNextElementSibling(cur);
	return next;
}

/* Position of an element among all elements, in document order. */
static long element_ordinal(xmlNodePtr node)
{
	long n = 0;

	for (xmlNodePtr cur = xmlDocGetRootElement(node->doc); cur; cur = next_element(cur), n++)
		if (cur == node)
			return n;
	return -1;
}

/* Start of the ordinal-th start tag of well-formed text without DOCTYPE.
 * '<' cannot occur in attribute values or character data, so every '<'
 * outside comments, CDATA and processing instructions opens a tag. */
static const char *nth_start_tag(const char *p, long ordinal)
{
	static const struct {
		const char *open, *close;
	} skip[] = {
		{"<!--", "-->"}, {"<![CDATA[", "]]>"}, {"<?", "?>"}, {"</", ">"},
	};
	size_t i;

	while ((p = strchr(p, '<'))) {
		for (i = 0; i < sizeof(skip) / sizeof(skip[0]); i++)
			if (!strncmp(p, skip[i].open, strlen(skip[i].open)))
				break;
		if (i < sizeof(skip) / sizeof(skip[0])) {
			p = strstr(p + strlen(skip[i].open), skip[i].close);
			if (!p)
				return NULL;
			p += strlen(skip[i].close);
			continue;
		}
		if (ordinal-- == 0)
			return p;
		p++;
	}
	return NULL;
}

/* Lex the start tag at p: name, then name = quoted-value pairs. */
static bool lex_tag(const char *p, struct tag *t)
{
	memset(t, 0, sizeof(*t));
	t->quote = '\'';
	t->name = p + 1;
	t->name_end = t->name + strcspn(t->name, XML_SPACE "/>");
	t->attrs_end = p = t->name_end;
	for (;;) {
		const char *name, *value;
		size_t name_len;

		p += strspn(p, XML_SPACE);
		if (*p == '/' || *p == '>' || !*p)
			break;
		name = p;
		name_len = strcspn(p, XML_SPACE "=");
		p += name_len;
		p += strspn(p, XML_SPACE);
		if (*p++ != '=')
			return false;
		p += strspn(p, XML_SPACE);
		if (*p != '\'' && *p != '"')
			return false;
		t->quote = *p++;
		value = p;
		p = strchr(p, t->quote);
		if (!p)
			return false;
		if (name_len == 2 && !strncmp(name, "io", 2)) {
			t->io = value;
			t->io_len = (size_t)(p - value);
		}
		t->attrs_end = ++p;
	}
	p = strchr(p, '>');
	t->end = p ? p + 1 : NULL;
	return p != NULL;
}

/* The start tag of node in the text libxml2 parsed it from. */
static int find_tag(const char *xml, xmlNodePtr node, struct tag *t, char *err, size_t errlen)
{
	const char *p = nth_start_tag(xml, element_ordinal(node));
	const char *name = (const char *)node->name;
	size_t len = strlen(name);

	if (!p || !lex_tag(p, t) || (size_t)(t->name_end - t->name) != len ||
	    strncmp(t->name, name, len))
		return fail(err, errlen, "cannot find <%s> in the XML text", name);
	return 0;
}

static char *splice(const char *xml, const char *at, size_t del, const char *ins)
{
	return xasprintf("%.*s%s%s", (int)(at - xml), xml, ins, at + del);
}

static char *splice_io(const char *xml, const struct located *loc, enum io_mode io,
		       char *err, size_t errlen)
{
	const char *mode = io_mode_name(io);
	const char *at;
	struct tag t;
	char *ins, *out;

	if (find_tag(xml, loc->driver ? loc->driver : loc->disk, &t, err, errlen) < 0)
		return NULL;
	if (t.io)
		return splice(xml, t.io, t.io_len, mode);
	if (loc->driver) {
		at = t.attrs_end;
		ins = xasprintf(" io=%c%s%c", t.quote, mode, t.quote);
	} else {
		/* Repeat the whitespace before the disk's first child, so the
		 * new first child is indented like the others. */
		int ws = (int)strspn(t.end, XML_SPACE);

		at = t.end;
		ins = xasprintf("%.*s<driver name=%cqemu%c io=%c%s%c/>", ws, t.end,
				t.quote, t.quote, t.quote, mode, t.quote);
	}
	out = splice(xml, at, 0, ins);
	free(ins);
	return out;
}

/* The splice must have hit exactly that disk's driver: read it back. */
static int verify(const char *xml, const char *target, enum io_mode io,
		  const struct xml_driver *before, char *err, size_t errlen)
{
	struct xml_driver after;
	int ret = 0;

	if (xmledit_get_driver(xml, target, &after, err, errlen) < 0)
		return -1;
	if (after.io != io || !streq_null(after.cache, before->cache) ||
	    !streq_null(after.type, before->type))
		ret = fail(err, errlen, "rewritten XML does not read back as io='%s' on %s",
			   io_mode_name(io), target);
	xml_driver_free(&after);
	return ret;
}

char *xmledit_set_io(const char *xml, const char *target, enum io_mode io,
		     struct xml_driver *old, char *err, size_t errlen)
{
	struct xml_driver cur = {0};
	struct located loc;
	char *out = NULL;

	if (old)
		memset(old, 0, sizeof(*old));
	if (!io_mode_name(io)) {
		fail(err, errlen, "no io mode given");
		return NULL;
	}
	if (locate(xml, target, &loc, err, errlen) < 0)
		return NULL;
	if (read_driver(loc.driver, target, &cur, err, errlen) < 0)
		goto out;
	out = cur.io == io ? xstrdup(xml) : splice_io(xml, &loc, io, err, errlen);
	if (out && verify(out, target, io, &cur, err, errlen) < 0) {
		free(out);
		out = NULL;
	}
out:
	if (out && old)
		*old = cur;
	else
		xml_driver_free(&cur);
	xmlFreeDoc(loc.doc);
	return out;
}

/* ---- attribute whitespace ----------------------------------------------- */

/* Length of the markup at p that holds no attribute (comment, CDATA,
 * processing instruction, end tag, DOCTYPE with its internal subset), to
 * copy as it is; 0 for a start tag. Unterminated: the rest of the text. */
static size_t plain_markup_len(const char *p)
{
	static const struct {
		const char *open, *close;
	} kinds[] = {
		{"<!--", "-->"}, {"<![CDATA[", "]]>"}, {"<?", "?>"}, {"</", ">"},
	};
	char quote = 0;
	int depth = 0;
	const char *q;

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		if (strncmp(p, kinds[i].open, strlen(kinds[i].open)))
			continue;
		q = strstr(p + strlen(kinds[i].open), kinds[i].close);
		return q ? (size_t)(q - p) + strlen(kinds[i].close) : strlen(p);
	}
	if (strncmp(p, "<!", 2))
		return 0;
	for (q = p + 2; *q; q++) {
		if (quote) {
			quote = *q == quote ? 0 : quote;
		} else if (*q == '"' || *q == '\'') {
			quote = *q;
		} else if (*q == '[' || *q == ']') {
			depth += *q == '[' ? 1 : -1;
		} else if (*q == '>' && depth <= 0) {
			return (size_t)(q - p) + 1;
		}
	}
	return strlen(p);
}

/* Copies the start tag at p, whitespace inside quoted values escaped;
 * returns what follows it. */
static const char *copy_start_tag(FILE *out, const char *p)
{
	char quote = 0;

	for (; *p; p++) {
		if (quote && (*p == '\t' || *p == '\n' || *p == '\r')) {
			fprintf(out, "&#%d;", *p);
			continue;
		}
		fputc(*p, out);
		if (quote)
			quote = *p == quote ? 0 : quote;
		else if (*p == '"' || *p == '\'')
			quote = *p;
		else if (*p == '>')
			return p + 1;
	}
	return p;
}

char *xml_keep_attr_whitespace(const char *xml)
{
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);

	if (!out) {
		log_err("out of memory");
		abort();
	}
	while (*xml) {
		size_t n = strcspn(xml, "<"), skip;

		fwrite(xml, 1, n, out);
		xml += n;
		if (!*xml)
			break;
		skip = plain_markup_len(xml);
		if (skip) {
			fwrite(xml, 1, skip, out);
			xml += skip;
		} else {
			xml = copy_start_tag(out, xml);
		}
	}
	if (fclose(out)) {
		log_err("out of memory");
		abort();
	}
	return text;
}

/* ---- comparing disks ---------------------------------------------------- */

/* A value for a one-line message: control characters escaped, long values
 * cut (with "…"), never a partial UTF-8 sequence. */
static void show(char *buf, size_t size, const xmlChar *value)
{
	const unsigned char *s = value ? value : BAD_CAST "";
	size_t o = 0;

	for (; *s && o + 8 < size; s++) {
		if (*s < 0x20 || *s == 0x7f)
			o += (size_t)snprintf(buf + o, size - o, *s == '\n' ? "\\n" : *s == '\t' ? "\\t" :
					      *s == '\r' ? "\\r" : "\\x%02x", *s);
		else
			buf[o++] = (char)*s;
	}
	buf[o] = '\0';
	if (*s) {
		utf8_trim_partial(buf);
		snprintf(buf + strlen(buf), size - strlen(buf), "…");
	}
}

static const xmlChar *ns_href(const xmlNs *ns)
{
	return ns ? ns->href : NULL;
}

static bool is_significant(xmlNodePtr n)
{
	if (n->type == XML_ELEMENT_NODE || n->type == XML_CDATA_SECTION_NODE)
		return true;
	return n->type == XML_TEXT_NODE && !xmlIsBlankNode(n);
}

static xmlNodePtr next_significant(xmlNodePtr n)
{
	while (n && !is_significant(n))
		n = n->next;
	return n;
}

/* One comparison of two disks; the first difference goes to diff as
 * "disk vda: <source> file='…' became '…'". */
struct cmp {
	const char *disk;       /* its target, for the message */
	bool except_io;         /* the disk whose <driver io> may differ */
	char *diff;
	size_t difflen;
};

__attribute__((format(printf, 2, 3)))
static int differ(struct cmp *c, const char *fmt, ...)
{
	int n = snprintf(c->diff, c->difflen, "disk %s: ", c->disk);
	va_list ap;

	if (n >= 0 && (size_t)n < c->difflen) {
		va_start(ap, fmt);
		vsnprintf(c->diff + n, c->difflen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	utf8_trim_partial(c->diff);
	return 1;
}

/* Attributes of x missing from y (what = "lost") or, with values,
 * different on y; the io of the excepted <driver> is skipped. */
static int attrs_in(struct cmp *c, xmlNodePtr x, xmlNodePtr y, bool skip_io, const char *what)
{
	const char *name = (const char *)x->name;
	char v1[128], v2[128];
	int r = 0;

	for (xmlAttrPtr a = x->properties; a && !r; a = a->next) {
		const xmlChar *href = ns_href(a->ns);

		if (skip_io && !a->ns && xmlStrEqual(a->name, BAD_CAST "io"))
			continue;
		xmlChar *vx = xmlGetNsProp(x, a->name, href);
		xmlChar *vy = xmlHasNsProp(y, a->name, href) ? xmlGetNsProp(y, a->name, href) : NULL;

		show(v1, sizeof(v1), vx);
		if (!vy) {
			r = differ(c, "<%s> %s %s='%s'", name, what, (const char *)a->name, v1);
		} else if (!xmlStrEqual(vx, vy)) {
			show(v2, sizeof(v2), vy);
			r = differ(c, "<%s> %s='%s' became '%s'", name, (const char *)a->name, v1, v2);
		}
		xmlFree(vx);
		xmlFree(vy);
	}
	return r;
}

static int compare_node(struct cmp *c, xmlNodePtr x, xmlNodePtr y, int depth);

static int compare_children(struct cmp *c, xmlNodePtr x, xmlNodePtr y, int depth)
{
	xmlNodePtr a = next_significant(x->children), b = next_significant(y->children);
	char v[128];

	for (; a && b; a = next_significant(a->next), b = next_significant(b->next))
		if (compare_node(c, a, b, depth + 1))
			return 1;
	if (!a && !b)
		return 0;
	xmlNodePtr extra = a ? a : b;
	if (extra->type == XML_ELEMENT_NODE)
		return differ(c, "<%s> %s <%s>", (const char *)x->name, a ? "lost" : "gained",
			      (const char *)extra->name);
	show(v, sizeof(v), extra->content);
	return differ(c, "<%s> %s text '%s'", (const char *)x->name, a ? "lost" : "gained", v);
}

/* depth 0 is the <disk>; the io exception is its direct <driver> child. */
static int compare_node(struct cmp *c, xmlNodePtr x, xmlNodePtr y, int depth)
{
	char v1[128], v2[128];

	if (x->type != XML_ELEMENT_NODE || y->type != XML_ELEMENT_NODE) {
		if (x->type == y->type && xmlStrEqual(x->content, y->content))
			return 0;
		show(v1, sizeof(v1), x->type == XML_ELEMENT_NODE ? x->name : x->content);
		show(v2, sizeof(v2), y->type == XML_ELEMENT_NODE ? y->name : y->content);
		return differ(c, "'%s' became '%s'", v1, v2);
	}
	if (!xmlStrEqual(x->name, y->name) || !xmlStrEqual(ns_href(x->ns), ns_href(y->ns)))
		return differ(c, "<%s> became <%s>", (const char *)x->name, (const char *)y->name);

	bool skip_io = c->except_io && depth == 1 && !x->ns &&
		       xmlStrEqual(x->name, BAD_CAST "driver");

	if (attrs_in(c, x, y, skip_io, "lost") || attrs_in(c, y, x, skip_io, "gained"))
		return 1;
	return compare_children(c, x, y, depth);
}

static xmlNodePtr next_disk(xmlNodePtr n)
{
	for (; n; n = xmlNextElementSibling(n))
		if (!n->ns && xmlStrEqual(n->name, BAD_CAST "disk"))
			return n;
	return NULL;
}

static xmlNodePtr first_disk(xmlDocPtr doc)
{
	xmlNodePtr root = xmlDocGetRootElement(doc);
	xmlNodePtr devices = root ? child(root, "devices") : NULL;

	return devices ? next_disk(xmlFirstElementChild(devices)) : NULL;
}

static int compare_disk(xmlNodePtr x, xmlNodePtr y, const char *target, char *diff,
			size_t difflen)
{
	xmlNodePtr t = child(x, "target");
	xmlChar *dev = t ? xmlGetNoNsProp(t, BAD_CAST "dev") : NULL;
	char label[64];
	struct cmp c = {.disk = label, .diff = diff, .difflen = difflen};
	int r;

	show(label, sizeof(label), dev ? dev : BAD_CAST "?");
	c.except_io = target && dev && xmlStrEqual(dev, BAD_CAST target);
	r = compare_node(&c, x, y, 0);
	xmlFree(dev);
	return r;
}

static int count_disks(xmlNodePtr n)
{
	int count = 0;

	for (; n; n = next_disk(xmlNextElementSibling(n)))
		count++;
	return count;
}

int xmledit_compare_disks(const char *old_xml, const char *new_xml, const char *target,
			  char *diff, size_t difflen)
{
	xmlDocPtr a = parse(old_xml, diff, difflen);
	xmlDocPtr b = a ? parse(new_xml, diff, difflen) : NULL;
	xmlNodePtr x, y;
	int r = -1;

	if (!b)
		goto out;
	x = first_disk(a);
	y = first_disk(b);
	if (count_disks(x) != count_disks(y)) {
		fail(diff, difflen, "%d disks became %d", count_disks(x), count_disks(y));
		r = 1;
		goto out;
	}
	for (r = 0; x && !r; x = next_disk(xmlNextElementSibling(x)),
			     y = next_disk(xmlNextElementSibling(y)))
		r = compare_disk(x, y, target, diff, difflen);
out:
	xmlFreeDoc(b);
	xmlFreeDoc(a);
	return r;
}
