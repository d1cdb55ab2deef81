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
