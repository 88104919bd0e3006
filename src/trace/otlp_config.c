/* otlp_config.c - OTLP exporter settings from OTEL_* variables. */
#include "trace/otlp_config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/log.h"

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = tolower(c);
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* A trimmed, percent-decoded copy of [p, p+n) (W3C baggage encoding, which
 * the OTEL_* list variables use). NULL when out of memory. */
static char *decode(const char *p, size_t n) {
  while (n && isspace((unsigned char)*p)) p++, n--;
  while (n && isspace((unsigned char)p[n - 1])) n--;
  char *o = malloc(n + 1);
  if (!o) return NULL;
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    int h, l;
    if (p[i] == '%' && i + 2 < n && (h = hexval(p[i + 1])) >= 0 &&
        (l = hexval(p[i + 2])) >= 0) {
      o[k++] = (char)(h * 16 + l);
      i += 2;
    } else {
      o[k++] = p[i];
    }
  }
  o[k] = 0;
  return o;
}

/* Adds or replaces key=value in list. 0, or -1 when out of memory. */
static int put(lode_otlp_kv *list, int *n, char *k, char *v) {
  for (int i = 0; i < *n; i++)
    if (!strcmp(list[i].key, k)) {
      free(list[i].value);
      free(k);
      list[i].value = v;
      return 0;
    }
  if (*n >= LODE_OTLP_MAX_ATTRS) {
    lode_warn("%s: more than %d entries; the rest are ignored", "OTLP settings",
              LODE_OTLP_MAX_ATTRS);
    free(k);
    free(v);
    return 0;
  }
  list[*n].key = k;
  list[*n].value = v;
  (*n)++;
  return 0;
}

/* Parses "k=v,k2=v2" from the variable `var` into list. */
static int parse_list(const char *var, lode_otlp_kv *list, int *n) {
  const char *s = getenv(var);
  if (!s) return 0;
  while (*s) {
    const char *end = strchr(s, ',');
    if (!end) end = s + strlen(s);
    const char *eq = memchr(s, '=', (size_t)(end - s));
    if (eq) {
      char *k = decode(s, (size_t)(eq - s)), *v = decode(eq + 1, (size_t)(end - eq - 1));
      if (!k || !v) {
        free(k);
        free(v);
        return -1;
      }
      if (!*k) {
        lode_warn("%s: an entry without a key is ignored", var);
        free(k);
        free(v);
      } else if (put(list, n, k, v)) {
        return -1;
      }
    } else if (end > s) {
      lode_warn("%s: '%.*s' is not key=value; ignored", var, (int)(end - s), s);
    }
    s = *end ? end + 1 : end;
  }
  return 0;
}

static int nonempty(const char *s) { return s && *s; }

int lode_otlp_config_load(lode_otlp_config *cfg, char *err, size_t errlen) {
  memset(cfg, 0, sizeof *cfg);
  const char *sd = getenv("OTEL_SDK_DISABLED");
  cfg->disabled = sd && !strcasecmp(sd, "true");
  const char *proto = getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL");
  if (!nonempty(proto)) proto = getenv("OTEL_EXPORTER_OTLP_PROTOCOL");
  if (nonempty(proto) && strcmp(proto, "http/protobuf"))
    lode_warn("OTEL_EXPORTER_OTLP_PROTOCOL=%s: lode speaks OTLP/HTTP with protobuf "
              "(http/protobuf) only; using that", proto);
  const char *t = getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
  const char *b = getenv("OTEL_EXPORTER_OTLP_ENDPOINT");
  if (nonempty(t)) {
    cfg->url = strdup(t);
  } else if (nonempty(b)) {
    size_t n = strlen(b);
    while (n && b[n - 1] == '/') n--;
    cfg->url = malloc(n + 16);
    if (cfg->url) snprintf(cfg->url, n + 16, "%.*s/v1/traces", (int)n, b);
  }
  if ((nonempty(t) || nonempty(b)) && !cfg->url) goto oom;
  if (parse_list("OTEL_EXPORTER_OTLP_HEADERS", cfg->headers, &cfg->nheaders) ||
      parse_list("OTEL_EXPORTER_OTLP_TRACES_HEADERS", cfg->headers, &cfg->nheaders))
    goto oom;
  /* service.name first: OTEL_SERVICE_NAME > OTEL_RESOURCE_ATTRIBUTES > lode */
  char *k = strdup("service.name"), *v = strdup("lode");
  if (!k || !v || put(cfg->resource, &cfg->nresource, k, v)) goto oom;
  if (parse_list("OTEL_RESOURCE_ATTRIBUTES", cfg->resource, &cfg->nresource)) goto oom;
  const char *sn = getenv("OTEL_SERVICE_NAME");
  if (nonempty(sn)) {
    k = strdup("service.name");
    v = strdup(sn);
    if (!k || !v || put(cfg->resource, &cfg->nresource, k, v)) goto oom;
  }
  cfg->timeout_s = 10.0;
  const char *to = getenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT");
  if (!nonempty(to)) to = getenv("OTEL_EXPORTER_OTLP_TIMEOUT");
  if (nonempty(to)) {
    char *end = NULL;
    double ms = strtod(to, &end);
    if (end == to || *end || !(ms > 0) || ms > 86400e3)
      lode_warn("OTEL_EXPORTER_OTLP_TIMEOUT=%s is not a number of milliseconds > 0; "
                "using 10000", to);
    else cfg->timeout_s = ms / 1000.0;
  }
  return 0;
oom:
  lode_otlp_config_free(cfg);
  snprintf(err, errlen, "out of memory reading the OTLP settings");
  return -1;
}

void lode_otlp_config_free(lode_otlp_config *cfg) {
  if (!cfg) return;
  free(cfg->url);
  for (int i = 0; i < cfg->nheaders; i++) free(cfg->headers[i].key), free(cfg->headers[i].value);
  for (int i = 0; i < cfg->nresource; i++)
    free(cfg->resource[i].key), free(cfg->resource[i].value);
  memset(cfg, 0, sizeof *cfg);
}

int lode_otlp_config_sends(const lode_otlp_config *cfg) {
  return cfg && cfg->url && !cfg->disabled;
}
