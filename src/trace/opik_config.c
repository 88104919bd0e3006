/* opik_config.c - Opik configuration: explicit > environment > file > defaults. */
#include "trace/opik_config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* One value per source slot; the first non-empty one wins. */
typedef struct file_vals {
  char *url, *api_key, *workspace, *project_name, *track_disable, *flush_timeout;
} file_vals;

static void file_vals_free(file_vals *f) {
  free(f->url);
  free(f->api_key);
  free(f->workspace);
  free(f->project_name);
  free(f->track_disable);
  free(f->flush_timeout);
  memset(f, 0, sizeof *f);
}

int lode__opik_truthy(const char *s) {
  if (!s) return 0;
  return !strcasecmp(s, "true") || !strcmp(s, "1") || !strcasecmp(s, "yes") ||
         !strcasecmp(s, "on");
}

static char *trim(char *s) {
  while (*s && isspace((unsigned char)*s)) s++;
  size_t n = strlen(s);
  while (n && isspace((unsigned char)s[n - 1])) s[--n] = 0;
  return s;
}

static int set_dup(char **slot, const char *v) {
  char *d = strdup(v);
  if (!d) return -1;
  free(*slot);
  *slot = d;
  return 0;
}

/* Reads the [opik] section of an INI file. A file that does not exist is not
 * an error (most users have none). Values may be quoted. */
static int read_file(const char *path, file_vals *out, char *err, size_t errlen) {
  int rc = -1;
  char line[4096];
  int lineno = 0, in_opik = 0;
  FILE *f = fopen(path, "r");
  if (!f) {
    if (errno == ENOENT || errno == ENOTDIR) return 0;
    snprintf(err, errlen, "cannot read Opik config file %s: %s", path, strerror(errno));
    return -1;
  }
  while (fgets(line, sizeof line, f)) {
    lineno++;
    char *s = trim(line);
    if (!*s || *s == '#' || *s == ';') continue;
    if (*s == '[') {
      char *e = strchr(s, ']');
      if (!e) {
        snprintf(err, errlen, "%s:%d: unterminated section header", path, lineno);
        goto done;
      }
      *e = 0;
      in_opik = !strcasecmp(trim(s + 1), "opik");
      continue;
    }
    char *eq = strchr(s, '=');
    if (!eq) eq = strchr(s, ':');
    if (!eq) {
      snprintf(err, errlen, "%s:%d: expected 'key = value' (section [opik])", path, lineno);
      goto done;
    }
    if (!in_opik) continue;
    *eq = 0;
    char *k = trim(s), *v = trim(eq + 1);
    size_t vn = strlen(v);
    if (vn >= 2 && (v[0] == '"' || v[0] == '\'') && v[vn - 1] == v[0]) {
      v[vn - 1] = 0;
      v++;
    }
    char **slot = NULL;
    if (!strcasecmp(k, "url_override")) slot = &out->url;
    else if (!strcasecmp(k, "api_key")) slot = &out->api_key;
    else if (!strcasecmp(k, "workspace")) slot = &out->workspace;
    else if (!strcasecmp(k, "project_name")) slot = &out->project_name;
    else if (!strcasecmp(k, "track_disable")) slot = &out->track_disable;
    else if (!strcasecmp(k, "default_flush_timeout")) slot = &out->flush_timeout;
    if (slot && *v && set_dup(slot, v)) {
      snprintf(err, errlen, "out of memory reading %s", path);
      goto done;
    }
  }
  if (ferror(f)) {
    snprintf(err, errlen, "cannot read Opik config file %s", path);
    goto done;
  }
  rc = 0;
done:
  fclose(f);
  return rc;
}

static const char *nonempty(const char *s) { return s && *s ? s : NULL; }

/* The first non-empty of explicit, environment, file. */
static const char *pick(const char *ex, const char *envname, const char *file) {
  if (nonempty(ex)) return ex;
  const char *e = nonempty(getenv(envname));
  if (e) return e;
  return nonempty(file);
}

int lode_opik_config_load(lode_opik_config *cfg, const lode_opik_settings *ex_in,
                          char *err, size_t errlen) {
  static const lode_opik_settings none = LODE_OPIK_SETTINGS_INIT;
  const lode_opik_settings *ex = ex_in ? ex_in : &none;
  file_vals fv;
  char pathbuf[4096];
  int rc = -1;
  memset(cfg, 0, sizeof *cfg);
  memset(&fv, 0, sizeof fv);

  const char *path = nonempty(ex->config_path);
  if (!path) path = nonempty(getenv("OPIK_CONFIG_PATH"));
  if (!path) {
    const char *home = nonempty(getenv("HOME"));
    if (home) {
      snprintf(pathbuf, sizeof pathbuf, "%s/.opik.config", home);
      path = pathbuf;
    }
  }
  if (path && read_file(path, &fv, err, errlen)) goto done;

  if (nonempty(ex->api_key))
    snprintf(cfg->key_source, sizeof cfg->key_source, "explicit settings");
  else if (nonempty(getenv("OPIK_API_KEY")))
    snprintf(cfg->key_source, sizeof cfg->key_source, "the environment (OPIK_API_KEY)");
  else if (nonempty(fv.api_key))
    snprintf(cfg->key_source, sizeof cfg->key_source, "%s (api_key)", path);
  else
    snprintf(cfg->key_source, sizeof cfg->key_source, "nowhere (no API key is set)");
  const char *url = pick(ex->url, "OPIK_URL_OVERRIDE", fv.url);
  const char *key = pick(ex->api_key, "OPIK_API_KEY", fv.api_key);
  const char *ws = pick(ex->workspace, "OPIK_WORKSPACE", fv.workspace);
  const char *proj = pick(ex->project_name, "OPIK_PROJECT_NAME", fv.project_name);
  if (!url && key) url = LODE_OPIK_CLOUD_URL;
  if (!proj) proj = LODE_OPIK_DEFAULT_PROJECT;

  if (ex->track_disable >= 0) cfg->track_disable = ex->track_disable;
  else if (nonempty(getenv("OPIK_TRACK_DISABLE")))
    cfg->track_disable = lode__opik_truthy(getenv("OPIK_TRACK_DISABLE"));
  else cfg->track_disable = lode__opik_truthy(fv.track_disable);

  cfg->flush_timeout_s = 10.0;
  const char *ft = nonempty(getenv("OPIK_DEFAULT_FLUSH_TIMEOUT"));
  if (!ft) ft = nonempty(fv.flush_timeout);
  if (ex->flush_timeout_s >= 0) cfg->flush_timeout_s = ex->flush_timeout_s;
  else if (ft) {
    char *end;
    double v = strtod(ft, &end);
    if (end == ft || *trim(end) || v < 0 || v != v) {
      snprintf(err, errlen,
               "OPIK_DEFAULT_FLUSH_TIMEOUT must be a number of seconds >= 0, not '%.40s'", ft);
      goto done;
    }
    cfg->flush_timeout_s = v;
  }

  if ((url && set_dup(&cfg->url, url)) || (key && set_dup(&cfg->api_key, key)) ||
      (ws && set_dup(&cfg->workspace, ws)) || set_dup(&cfg->project_name, proj)) {
    snprintf(err, errlen, "out of memory loading the Opik configuration");
    goto done;
  }
  /* these go into HTTP headers and the request line: a CR/LF would inject
   * headers. The message names the setting, never the (secret) value. */
  static const char *const names[] = {"Opik URL (OPIK_URL_OVERRIDE)", "API key (OPIK_API_KEY)",
                                      "workspace (OPIK_WORKSPACE)"};
  const char *vals[] = {cfg->url, cfg->api_key, cfg->workspace};
  for (int i = 0; i < 3; i++)
    for (const unsigned char *p = (const unsigned char *)vals[i]; p && *p; p++)
      if (*p < 0x20 || *p == 0x7f) {
        snprintf(err, errlen, "the Opik %s contains a control character; check its value",
                 names[i]);
        goto done;
      }
  if (cfg->url) {
    size_t n = strlen(cfg->url);
    while (n > 0 && cfg->url[n - 1] == '/') cfg->url[--n] = 0;
    if (strncmp(cfg->url, "http://", 7) && strncmp(cfg->url, "https://", 8)) {
      /* the URL is not a secret, but keep the message short */
      snprintf(err, errlen,
               "Opik URL '%.200s' must start with http:// or https:// "
               "(set OPIK_URL_OVERRIDE, e.g. http://localhost:5173/api)",
               cfg->url);
      goto done;
    }
  }
  rc = 0;
done:
  file_vals_free(&fv);
  if (rc) lode_opik_config_free(cfg);
  return rc;
}

void lode_opik_config_free(lode_opik_config *cfg) {
  if (!cfg) return;
  free(cfg->url);
  if (cfg->api_key) {
    /* scrub the secret before giving the memory back */
    volatile char *p = cfg->api_key;
    while (*p) *p++ = 0;
  }
  free(cfg->api_key);
  free(cfg->workspace);
  free(cfg->project_name);
  memset(cfg, 0, sizeof *cfg);
}

int lode_opik_config_sends(const lode_opik_config *cfg) {
  return cfg && cfg->url && !cfg->track_disable;
}
