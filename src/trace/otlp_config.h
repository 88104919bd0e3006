#ifndef LODE_OTLP_CONFIG_H
#define LODE_OTLP_CONFIG_H
/* otlp_config.h - where OTLP spans go: OpenTelemetry's standard exporter
 * variables (docs/tracing.md, "OpenTelemetry (OTLP)").
 *
 *   OTEL_EXPORTER_OTLP_TRACES_ENDPOINT  the full URL (used as given), else
 *   OTEL_EXPORTER_OTLP_ENDPOINT         a base URL: /v1/traces is appended
 *   OTEL_EXPORTER_OTLP_HEADERS          k=v,k2=v2 (values percent-decoded;
 *                                       OTEL_EXPORTER_OTLP_TRACES_HEADERS too)
 *   OTEL_EXPORTER_OTLP_TIMEOUT          per request, milliseconds (10000)
 *   OTEL_SERVICE_NAME                   resource service.name (default "lode")
 *   OTEL_RESOURCE_ATTRIBUTES            more resource attributes, k=v,...
 *   OTEL_SDK_DISABLED=true              nothing is sent over OTLP
 *
 * Only OTLP/HTTP with binary protobuf is spoken; another
 * OTEL_EXPORTER_OTLP_PROTOCOL gets a warning and protobuf anyway.
 *
 * Ownership: a loaded config owns its strings (lode_otlp_config_free).
 * Header values may be secrets: they go only into request headers. */
#include <stddef.h>

#define LODE_OTLP_MAX_ATTRS 32

typedef struct lode_otlp_kv {
  char *key, *value;
} lode_otlp_kv;

typedef struct lode_otlp_config {
  char *url; /* NULL: OTLP is not configured (nothing is sent) */
  lode_otlp_kv headers[LODE_OTLP_MAX_ATTRS];
  int nheaders;
  lode_otlp_kv resource[LODE_OTLP_MAX_ATTRS]; /* service.name first */
  int nresource;
  double timeout_s;
  int disabled; /* OTEL_SDK_DISABLED */
} lode_otlp_config;

/* Fills cfg from the environment. Malformed entries are skipped with a
 * warning. Returns 0, or -1 when out of memory (cfg then needs no free). */
int lode_otlp_config_load(lode_otlp_config *cfg, char *err, size_t errlen);
void lode_otlp_config_free(lode_otlp_config *cfg);
/* 1 when spans should be sent over OTLP. */
int lode_otlp_config_sends(const lode_otlp_config *cfg);
#endif
