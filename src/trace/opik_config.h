#ifndef LODE_OPIK_CONFIG_H
#define LODE_OPIK_CONFIG_H
/* opik_config.h - where traces go: Opik's own configuration sources.
 *
 * Precedence, as Opik's Python SDK: explicit settings > environment
 * (OPIK_URL_OVERRIDE, OPIK_API_KEY, OPIK_WORKSPACE, OPIK_PROJECT_NAME,
 * OPIK_TRACK_DISABLE, OPIK_DEFAULT_FLUSH_TIMEOUT) > the INI file
 * (~/.opik.config or $OPIK_CONFIG_PATH, section [opik]) > defaults.
 *
 * Ownership: a loaded lode_opik_config owns its strings (lode_opik_config_free).
 * The API key is a secret: it is only ever put in the Authorization header,
 * never in the database, logs or error messages. */

/* Opik Cloud, used when an API key is configured without a URL (as the SDK). */
#include <stddef.h>

#define LODE_OPIK_CLOUD_URL "https://www.comet.com/opik/api"
#define LODE_OPIK_DEFAULT_PROJECT "Default Project"

typedef struct lode_opik_config {
  char *url;          /* base URL including Opik's /api prefix, no trailing '/';
                         NULL = local only (nothing is sent) */
  char *api_key;      /* NULL if none (self-hosted Opik needs none) */
  char *workspace;    /* NULL if none */
  char *project_name; /* never NULL after load */
  int track_disable;  /* 1: record locally, never send */
  double flush_timeout_s;
  /* where the key (or, without one, the workspace) came from, for a message
   * when Opik refuses it: "the environment (OPIK_API_KEY)", "<file>
   * (api_key)", "explicit settings" or "nowhere (no API key is set)" */
  char key_source[4200];
} lode_opik_config;

/* Explicit settings (e.g. from a pipeline or CLI); NULL / -1 = not given. */
typedef struct lode_opik_settings {
  const char *url, *api_key, *workspace, *project_name;
  int track_disable;       /* -1 unset, 0, 1 */
  double flush_timeout_s;  /* < 0 unset */
  const char *config_path; /* NULL: $OPIK_CONFIG_PATH, else ~/.opik.config */
} lode_opik_settings;

#define LODE_OPIK_SETTINGS_INIT {NULL, NULL, NULL, NULL, -1, -1.0, NULL}

/* Fills `cfg` from the sources above. A missing config file is not an error;
 * an unreadable or malformed one is (message names the file and line).
 * Returns 0 or -1 (cfg is then empty and needs no free). */
int lode_opik_config_load(lode_opik_config *cfg, const lode_opik_settings *explicit_,
                          char *err, size_t errlen);
void lode_opik_config_free(lode_opik_config *cfg);
/* 1 when records should be sent: a URL is known and tracking is not disabled. */
int lode_opik_config_sends(const lode_opik_config *cfg);
/* "true", "1", "yes", "on" (any case) */
int lode__opik_truthy(const char *s);
#endif
