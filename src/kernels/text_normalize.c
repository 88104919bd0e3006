/* text_normalize.c - any bytes in, clean UTF-8 out.
 *
 * Three passes, each optional except the first's repair:
 *  1. decode: invalid UTF-8 -> U+FFFD (one per bad byte); with `controls`,
 *     newlines are unified (CRLF, CR, NEL, LS -> "\n"; PS, FF -> "\n\n",
 *     since a page or paragraph separator is a paragraph break; VT -> "\n"),
 *     other C0/C1 controls and the BOM (U+FEFF) are dropped; "\t" is kept.
 *  2. NFC (or NFKC) with utf8proc, skipping lines that are already NFC.
 *  3. whitespace: runs of blanks (space, tab, any Zs such as NBSP or U+3000)
 *     become one space; blanks at line ends and starts go; a single newline
 *     stays a newline, two or more (blank lines, even with blanks on them)
 *     become exactly one blank line, so paragraphs survive; the text is
 *     trimmed. Paragraph structure is what the splitter keys on.
 * Pass 1 always runs, so the output is valid UTF-8 whatever the options. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "base/buf.h"
#include "kernels/text_internal.h"

void lode_text_normalize_opts_default(struct lode_text_normalize_opts *o) {
  o->nfc = 1;
  o->nfkc = 0;
  o->controls = 1;
  o->whitespace = 1;
}

/* Decodes the valid sequence of k bytes at p. */
static int32_t decode(const unsigned char *p, size_t k) {
  switch (k) {
  case 1: return p[0];
  case 2: return ((p[0] & 0x1F) << 6) | (p[1] & 0x3F);
  case 3: return ((p[0] & 0x0F) << 12) | ((p[1] & 0x3F) << 6) | (p[2] & 0x3F);
  default:
    return ((p[0] & 0x07) << 18) | ((p[1] & 0x3F) << 12) | ((p[2] & 0x3F) << 6) |
           (p[3] & 0x3F);
  }
}

/* Pass 1. Returns 0 or -1 (size cap / out of memory). */
static int repair(const char *s, size_t len, int controls, lode_buf *out) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;
  while (i < len) {
    /* copy a run of plain printable ASCII at once */
    size_t j = i;
    while (j < len && p[j] >= 0x20 && p[j] < 0x7F) j++;
    if (j > i && lode_buf_append(out, p + i, j - i)) return -1;
    i = j;
    if (i >= len) break;
    size_t k = lode__text_utf8_seq(p + i, len - i);
    if (k == 0) {
      if (lode_buf_append(out, "\xEF\xBF\xBD", 3)) return -1;
      i++;
      continue;
    }
    int32_t cp = decode(p + i, k);
    const char *rep = NULL; /* replacement; "" drops the character */
    if (controls) {
      if (cp == '\r') {
        rep = "\n";
        if (i + 1 < len && p[i + 1] == '\n') k = 2; /* CRLF */
      } else if (cp == '\n' || cp == '\t') {
        rep = NULL;
      } else if (cp == 0x85 || cp == 0x2028 || cp == 0x0B) {
        rep = "\n";
      } else if (cp == 0x2029 || cp == 0x0C) {
        rep = "\n\n";
      } else if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || cp == 0xFEFF) {
        rep = "";
      }
    }
    if (rep ? lode_buf_puts(out, rep) : lode_buf_append(out, p + i, k)) return -1;
    i += k;
  }
  return 0;
}

static int ascii_blank(unsigned char b) {
  return b == ' ' || b == '\t' || b == '\r' || b == 0x0B || b == 0x0C;
}

/* Is the character at p[0..k) (valid, k >= 2) a Unicode space separator? */
static int wide_blank(const unsigned char *p, size_t k) {
  return utf8proc_category(decode(p, k)) == UTF8PROC_CATEGORY_ZS;
}

/* Pass 3 over valid UTF-8: gaps are decided when the next visible character
 * comes, runs of visible characters are copied whole. */
static int collapse(const char *s, size_t len, lode_buf *out) {
  const unsigned char *p = (const unsigned char *)s;
  int blank = 0, newlines = 0;
  size_t i = 0;
  while (i < len) {
    unsigned char b = p[i];
    if (b == '\n') {
      newlines++;
      blank = 0;
      i++;
      continue;
    }
    if (ascii_blank(b)) {
      blank = 1;
      i++;
      continue;
    }
    if (b >= 0x80) {
      size_t k = lode__text_utf8_seq(p + i, len - i);
      if (k == 0) k = 1; /* not reached: input is valid */
      if (k > 1 && wide_blank(p + i, k)) {
        blank = 1;
        i += k;
        continue;
      }
    }
    if (out->len > 0) {
      const char *gap = newlines >= 2 ? "\n\n" : newlines == 1 ? "\n" : blank ? " " : "";
      if (lode_buf_puts(out, gap)) return -1;
    }
    newlines = blank = 0;
    size_t j = i;
    while (j < len) {
      b = p[j];
      if (b < 0x80) {
        if (b == '\n' || ascii_blank(b)) break;
        j++;
      } else {
        size_t k = lode__text_utf8_seq(p + j, len - j);
        if (k == 0) k = 1;
        if (k > 1 && wide_blank(p + j, k)) break;
        j += k;
      }
    }
    if (lode_buf_append(out, p + i, j - i)) return -1;
    i = j;
  }
  return 0;
}

/* Pass 2, line by line: NFC never composes across "\n" (a starter that is
 * part of no composition), and a line with no code point from U+0300 up
 * (lead bytes below 0xCC) is already NFC; for NFKC only ASCII is. Most
 * lines of most text are copied without a utf8proc call. Returns 0, -1 (out
 * of memory) or a utf8proc error (< -1 is not used: *uerr gets it). */
static int compose(const char *s, size_t len, int nfkc, lode_buf *out, utf8proc_ssize_t *uerr) {
  const unsigned char *p = (const unsigned char *)s;
  unsigned char limit = nfkc ? 0x80 : 0xCC;
  utf8proc_option_t flags = UTF8PROC_STABLE | UTF8PROC_COMPOSE | (nfkc ? UTF8PROC_COMPAT : 0);
  size_t i = 0;
  while (i < len) {
    const unsigned char *nl = memchr(p + i, '\n', len - i);
    size_t e = nl ? (size_t)(nl - p) : len; /* line is [i, e), newline at e */
    int plain = 1;
    for (size_t j = i; j < e && plain; j++) plain = p[j] < limit;
    if (plain) {
      if (lode_buf_append(out, p + i, e - i)) return -1;
    } else {
      utf8proc_uint8_t *nf = NULL;
      utf8proc_ssize_t n = utf8proc_map(p + i, (utf8proc_ssize_t)(e - i), &nf, flags);
      if (n < 0) {
        *uerr = n;
        return -1;
      }
      int rc = lode_buf_append(out, nf, (size_t)n);
      free(nf);
      if (rc) return -1;
    }
    if (nl && lode_buf_putc(out, '\n')) return -1;
    i = nl ? e + 1 : len;
  }
  return 0;
}

int lode_text_normalize(const char *s, size_t len,
                        const struct lode_text_normalize_opts *o, char **out,
                        size_t *out_len, char *err) {
  lode_buf a, b, c;
  const char *cur;
  size_t curlen;
  int rc = -1;
  *out = NULL;
  *out_len = 0;
  lode_buf_init(&a, 0);
  lode_buf_init(&b, 0);
  lode_buf_init(&c, 0);
  /* each pass's output is about as long as its input: room for it at once
   * rather than doubling (and copying) on the way (failures show below) */
  (void)lode_buf_reserve(&a, len + len / 16);
  if (repair(s, len, o->controls, &a) < 0) {
    if (err) snprintf(err, LODE_TEXT_ERRLEN, "normalize: out of memory or text over 2 GiB");
    goto done;
  }
  cur = a.p ? (const char *)a.p : "";
  curlen = a.len;
  if (o->nfc || o->nfkc) {
    utf8proc_ssize_t uerr = 0;
    (void)lode_buf_reserve(&c, curlen + curlen / 16);
    if (compose(cur, curlen, o->nfkc, &c, &uerr) < 0) {
      if (err)
        snprintf(err, LODE_TEXT_ERRLEN, "normalize: %s",
                 uerr ? utf8proc_errmsg(uerr) : "out of memory");
      goto done;
    }
    cur = c.p ? (const char *)c.p : "";
    curlen = c.len;
    lode_buf_free(&a); /* composed: pass 1's text is no longer needed */
  }
  if (o->whitespace) {
    (void)lode_buf_reserve(&b, curlen);
    if (collapse(cur, curlen, &b) < 0) {
      if (err) snprintf(err, LODE_TEXT_ERRLEN, "normalize: out of memory");
      goto done;
    }
  } else if (lode_buf_append(&b, cur, curlen)) {
    if (err) snprintf(err, LODE_TEXT_ERRLEN, "normalize: out of memory");
    goto done;
  }
  lode_buf_free(&c);
  lode_buf_free(&a);
  if (!lode_buf_cstr(&b)) {
    if (err) snprintf(err, LODE_TEXT_ERRLEN, "normalize: out of memory");
    goto done;
  }
  *out = (char *)lode_buf_steal(&b, out_len);
  rc = 0;
done:
  lode_buf_free(&c);
  lode_buf_free(&a);
  lode_buf_free(&b);
  return rc;
}
