/* Loading the configuration: the main file, then the *.conf drop-ins in PATH.d, into a
 * struct conf.
 *
 * libinih splits `key = value` lines and strips comments, but the Debian build has a fixed
 * 200-byte line buffer (longer lines are silently truncated), truncates section names at
 * 50 bytes, treats an indented line as a continuation of the previous value, and does not
 * tell the handler the line number. So inih reads through our reader function, which
 * counts lines, refuses over-long lines, strips indentation and handles [section] headers
 * itself; inih only ever sees blank lines, comments and key lines that are known to parse.
 *
 * Merge rules (docs/config.md): within one file a key or named section may appear once; a
 * later file overrides scalar keys, amends named sections of the same name and adds new
 * ones; repeatable keys accumulate, and an empty value resets a key to its default (a
 * repeatable key to an empty list). */
#include <dirent.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/conf_internal.h"

/* Named sections are handled generically through their name, which comes first. */
_Static_assert(offsetof(struct conf_participant, id) == 0, "id must come first");
_Static_assert(offsetof(struct conf_source, name) == 0, "name must come first");
_Static_assert(offsetof(struct conf_nudge, name) == 0, "name must come first");

static const size_t named_max[] = {CONF_MAX_PARTICIPANTS, CONF_MAX_SOURCES, CONF_MAX_NUDGES};

void conf_error(struct conf_loader *L, const char *file, int line, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    if (L->stopped)
        return;
    if (L->n_errors == CONF_MAX_ERRORS) {
        L->stopped = true;
        if (L->err)
            L->err(L->ud, file, line, "too many errors, not reading further");
        return;
    }
    L->n_errors++;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (L->err)
        L->err(L->ud, file, line, msg);
}

#define ERR(L, ...) conf_error(L, (L)->file, (L)->lineno, __VA_ARGS__)

/* ---- section instances ------------------------------------------------------------ */

static void **named_array(struct conf *c, enum conf_sect s, size_t **n, size_t *elem)
{
    switch (s) {
    case CS_PARTICIPANT:
        *n = &c->n_participants;
        *elem = sizeof(struct conf_participant);
        return (void **)&c->participants;
    case CS_SOURCE:
        *n = &c->n_sources;
        *elem = sizeof(struct conf_source);
        return (void **)&c->sources;
    default:
        *n = &c->n_nudges;
        *elem = sizeof(struct conf_nudge);
        return (void **)&c->nudges;
    }
}

static void *sect_ptr(struct conf *c, enum conf_sect s, size_t index)
{
    switch (s) {
    case CS_DAEMON: return &c->daemon;
    case CS_STORE: return &c->store;
    case CS_PUBLISH: return &c->publish;
    case CS_CONTROL: return &c->control;
    case CS_INGEST: return &c->ingest;
    case CS_PIPELINE: return &c->pipeline;
    case CS_STUDY: return &c->study;
    case CS_PARTICIPANT: return &c->participants[index];
    case CS_SOURCE: return &c->sources[index];
    default: return &c->nudges[index];
    }
}

struct conf_inst *conf_inst_of(struct conf_loader *L, enum conf_sect s, size_t index)
{
    return s < CS__FIXED ? &L->fixed[s] : &L->named[s - CS__FIXED][index];
}

/* The name field is the first member of every named section struct. */
static const char *named_name(struct conf *c, enum conf_sect s, size_t i)
{
    return (const char *)sect_ptr(c, s, i);
}

static int named_find(struct conf *c, enum conf_sect s, const char *name)
{
    size_t *n, elem;
    named_array(c, s, &n, &elem);
    for (size_t i = 0; i < *n; i++)
        if (strcmp(named_name(c, s, i), name) == 0)
            return (int)i;
    return -1;
}

static int named_add(struct conf_loader *L, enum conf_sect s, const char *name, size_t *index)
{
    size_t *n, elem, k = s - CS__FIXED;
    void **arr = named_array(L->c, s, &n, &elem);
    if (*n == L->named_cap[k]) {
        size_t cap = L->named_cap[k] ? 2 * L->named_cap[k] : 16;
        void *a = realloc(*arr, cap * elem);
        if (!a)
            return -ENOMEM;
        *arr = a;
        struct conf_inst *in = realloc(L->named[k], cap * sizeof(*in));
        if (!in)
            return -ENOMEM;
        L->named[k] = in;
        L->named_cap[k] = cap;
    }
    char *p = (char *)*arr + *n * elem;
    memset(p, 0, elem);
    memset(&L->named[k][*n], 0, sizeof(L->named[k][*n]));
    conf_sect_defaults(s, p, &L->ctx);
    strcpy(p, name);
    struct conf_loc loc = {L->file, L->lineno};
    if (s == CS_PARTICIPANT)
        L->c->participants[*n].loc = loc;
    else if (s == CS_SOURCE)
        L->c->sources[*n].loc = loc;
    else
        L->c->nudges[*n].loc = loc, L->c->nudges[*n].escalate_index = -1;
    *index = (*n)++;
    return 0;
}

/* "[kind]" or "[kind NAME]", already stripped of the brackets and surrounding blanks. */
static void section_header(struct conf_loader *L, char *hdr)
{
    char *name = hdr + strcspn(hdr, " \t");
    if (*name)
        *name++ = 0;
    name += strspn(name, " \t");
    L->sect_state = SECT_IGNORE;
    int s = -1;
    for (int i = 0; i < CS__COUNT; i++)
        if (strcmp(conf_sects[i].name, hdr) == 0)
            s = i;
    if (s < 0) {
        ERR(L, "unknown section [%s%s%s]", hdr, *name ? " " : "", name);
        return;
    }
    if (!conf_sects[s].named) {
        if (*name)
            ERR(L, "section [%s] takes no name", hdr);
        else
            L->sect = (enum conf_sect)s, L->sect_state = SECT_OK;
        return;
    }
    if (!*name) {
        ERR(L, "section [%s] needs a name: [%s NAME]", hdr, hdr);
        return;
    }
    if (!conf_valid_id(name)) {
        ERR(L, "invalid %s name \"%s\" (1-64 of A-Z a-z 0-9 _ -)", hdr, name);
        return;
    }
    int found = named_find(L->c, (enum conf_sect)s, name);
    size_t index = (size_t)found;
    if (found >= 0) {
        struct conf_inst *in = conf_inst_of(L, (enum conf_sect)s, index);
        if (in->header_file == L->file) {
            ERR(L, "duplicate section [%s %s] (first at line %d)", hdr, name, in->header_line);
            return;
        }
    } else {
        size_t *n, elem;
        named_array(L->c, (enum conf_sect)s, &n, &elem);
        if (*n >= named_max[s - CS__FIXED]) {
            ERR(L, "too many [%s] sections (max %zu)", hdr, named_max[s - CS__FIXED]);
            return;
        }
        if (named_add(L, (enum conf_sect)s, name, &index) < 0) {
            ERR(L, "out of memory");
            return;
        }
    }
    struct conf_inst *in = conf_inst_of(L, (enum conf_sect)s, index);
    in->header_file = L->file;
    in->header_line = L->lineno;
    L->sect = (enum conf_sect)s;
    L->index = index;
    L->sect_state = SECT_OK;
}

/* "[participant p01]" for messages. */
static void sect_label(struct conf_loader *L, char *buf, size_t cap)
{
    if (L->sect < CS__FIXED)
        snprintf(buf, cap, "[%s]", conf_sects[L->sect].name);
    else
        snprintf(buf, cap, "[%s %s]", conf_sects[L->sect].name,
                 named_name(L->c, L->sect, L->index));
}

/* ---- reading lines ---------------------------------------------------------------- */

/* Classifies the line (indentation already dropped) the way inih will read it. Returns 0
 * for a line to hand to inih as is, 1 for one handled here (inih then gets a blank line). */
static int classify(struct conf_loader *L, char *s)
{
    if (!*s || *s == ';' || *s == '#')
        return 0;
    if (*s == '[') {
        char *close = strchr(s, ']');
        if (!close) {
            ERR(L, "missing \"]\" in section header");
            L->sect_state = SECT_IGNORE;
            return 1;
        }
        char *after = close + 1 + strspn(close + 1, " \t");
        if (*after && *after != ';' && *after != '#') {
            ERR(L, "unexpected text after \"]\"");
            L->sect_state = SECT_IGNORE;
            return 1;
        }
        *close = 0;
        s++;
        s += strspn(s, " \t");
        size_t n = strlen(s);
        while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
            s[--n] = 0;
        section_header(L, s);
        return 1;
    }
    /* inih's rule: the first '=' or ':' unless a ';' after a blank starts a comment first */
    for (size_t i = 0; s[i]; i++) {
        if (s[i] == '=' || s[i] == ':') {
            if (i == 0) {
                ERR(L, "missing key name before \"%c\"", s[i]);
                return 1;
            }
            return 0;
        }
        if (s[i] == ';' && i > 0 && (s[i - 1] == ' ' || s[i - 1] == '\t'))
            break;
    }
    ERR(L, "expected \"key = value\", \"[section]\" or a comment");
    return 1;
}

static char *reader(char *str, int num, void *stream)
{
    struct conf_loader *L = stream;
    if (L->pos >= L->len || L->stopped)
        return NULL;
    const char *line = L->buf + L->pos;
    const char *nl = memchr(line, '\n', L->len - L->pos);
    size_t n = nl ? (size_t)(nl - line) : L->len - L->pos;
    L->pos += n + (nl != NULL);
    L->lineno++;
    L->line_buf = str;
    L->indent = 0;
    str[0] = 0;
    if (n && line[n - 1] == '\r')
        n--;
    size_t max = num - 1 < CONF_LINE_MAX ? (size_t)(num - 1) : CONF_LINE_MAX;
    if (n > max) {
        ERR(L, "line too long (%zu bytes, max %zu)", n, max);
        return str;
    }
    if (memchr(line, 0, n)) {
        ERR(L, "NUL byte in line");
        return str;
    }
    if (L->lineno == 1 && n >= 3 && memcmp(line, "\xef\xbb\xbf", 3) == 0)
        L->indent = 3;
    while (L->indent < n && (line[L->indent] == ' ' || line[L->indent] == '\t'))
        L->indent++;
    memcpy(str, line + L->indent, n - L->indent);
    str[n - L->indent] = 0;
    if (classify(L, str))
        str[0] = 0;
    return str;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
    struct conf_loader *L = user;
    char label[CONF_ID_SIZE + 32], msg[400];
    (void)section;  /* inih's copy is truncated at 50 bytes; ours is L->sect/L->index */
    if (L->stopped || L->sect_state == SECT_IGNORE)
        return 1;
    if (L->sect_state == SECT_NONE) {
        ERR(L, "key \"%s\" outside any section", name);
        return 1;
    }
    sect_label(L, label, sizeof(label));
    const struct conf_key *k = conf_key_find(L->sect, name);
    if (!k) {
        ERR(L, "unknown key \"%s\" in %s", name, label);
        return 1;
    }
    struct conf_inst *in = conf_inst_of(L, L->sect, L->index);
    struct conf_loc *at = &in->at[conf_key_slot(k)];
    if (!(k->flags & CK_REPEATABLE) && at->file == L->file) {
        ERR(L, "duplicate key \"%s\" in %s (first set at line %d)", name, label, at->line);
        return 1;
    }
    void *sect = sect_ptr(L->c, L->sect, L->index);
    /* value points into the line inih got from reader(); its offset gives the column */
    uintptr_t v = (uintptr_t)value, b = (uintptr_t)L->line_buf;
    int col0 = (int)L->indent + (v >= b && v < b + CONF_STR_SIZE ? (int)(v - b) : 0);
    int col = -1, r = 0;
    if (!*value && (k->flags & CK_REQUIRED)) {
        ERR(L, "%s %s: needs a value", label, name);
        r = -EINVAL;
        goto done;
    }
    if (k->flags & CK_REPEATABLE) {
        size_t *count = (size_t *)((char *)sect + k->count_off);
        char *elems = (char *)sect + k->off;
        if (!at->file || !*value)
            *count = 0;  /* the first explicit value replaces the built-in default */
        at->file = L->file;
        at->line = L->lineno;
        if (!*value)
            return 1;
        for (size_t i = 0; i < *count; i++)
            if (strcmp(elems + i * k->size, value) == 0) {
                ERR(L, "%s %s: \"%s\" is listed twice", label, name, value);
                return 1;
            }
        if (*count == k->max_count) {
            ERR(L, "%s %s: too many values (max %zu)", label, name, k->max_count);
            return 1;
        }
        r = conf_key_parse(k, elems + *count * k->size, value, &L->ctx, msg, sizeof(msg), &col);
        if (r == 0)
            in->rep_at[(*count)++] = *at;
    } else if (!*value) {
        conf_key_reset(k, sect, &L->ctx);
    } else {
        r = conf_key_parse(k, (char *)sect + k->off, value, &L->ctx, msg, sizeof(msg), &col);
    }
    if (r == -ENOMEM)
        ERR(L, "out of memory");
    else if (r < 0 && col >= 0)
        ERR(L, "%s %s: column %d: %s", label, name, col0 + col + 1, msg);
    else if (r < 0)
        ERR(L, "%s %s: %s", label, name, msg);
done:
    /* a bad value still counts as set, so a repeat is reported as a duplicate; the bad bit
     * keeps cross-checks from piling consequences on top of the real error */
    at->file = L->file;
    at->line = L->lineno;
    uint32_t bit = 1u << conf_key_slot(k);
    in->bad = r < 0 ? in->bad | bit : in->bad & ~bit;
    return 1;
}

/* ---- files ------------------------------------------------------------------------ */

static int read_all(const char *path, char **out, size_t *len)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0 || S_ISDIR(st.st_mode)) {
        int e = S_ISDIR(st.st_mode) ? EISDIR : errno;
        close(fd);
        return -e;
    }
    /* one byte beyond the limit tells "too large" from "exactly at the limit" */
    char *buf = malloc(CONF_MAX_FILE_SIZE + 1);
    size_t n = 0;
    int r = buf ? 0 : -ENOMEM;
    while (r == 0 && n < CONF_MAX_FILE_SIZE + 1) {
        ssize_t got = read(fd, buf + n, CONF_MAX_FILE_SIZE + 1 - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            r = -errno;
        else if (got == 0)
            break;
        else
            n += (size_t)got;
    }
    close(fd);
    if (r == 0 && n > CONF_MAX_FILE_SIZE)
        r = -EFBIG;
    if (r < 0) {
        free(buf);
        return r;
    }
    *out = buf;
    *len = n;
    return 0;
}

static int load_file(struct conf_loader *L, const char *path)
{
    char *buf = NULL, *name = strdup(path);
    char **files = realloc(L->c->files, (L->c->n_files + 1) * sizeof(*files));
    size_t len = 0;
    if (!name || !files) {
        free(name);
        if (files)
            L->c->files = files;
        return -ENOMEM;
    }
    L->c->files = files;
    files[L->c->n_files++] = name;
    int r = read_all(path, &buf, &len);
    if (r < 0) {
        if (r == -EFBIG)
            conf_error(L, name, 0, "file is larger than %d bytes", CONF_MAX_FILE_SIZE);
        else
            conf_error(L, name, 0, "cannot read: %s", strerror(-r));
        return r;
    }
    L->file = name;
    L->buf = buf;
    L->len = len;
    L->pos = 0;
    L->lineno = 0;
    L->sect_state = SECT_NONE;
    r = ini_parse_stream(reader, L, handler, L);
    if (r > 0)  /* reader() pre-screens every line, so this means inih and it disagree */
        conf_error(L, name, r, "syntax error");
    free(buf);
    L->buf = NULL;
    return r == -2 ? -ENOMEM : 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The *.conf files in PATH.d in strcmp order (byte order, like systemd's drop-ins: "10-x"
 * sorts before "9-x"; docs/config.md recommends two-digit prefixes). Dot files are skipped. */
static int load_dropins(struct conf_loader *L, const char *path)
{
    char dir[4096], *names[CONF_MAX_DROPINS];
    size_t n = 0;
    int r = 0;
    if ((size_t)snprintf(dir, sizeof(dir), "%s.d", path) >= sizeof(dir))
        return 0;
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT)
            return 0;
        conf_error(L, dir, 0, "cannot read drop-in directory: %s", strerror(errno));
        return 0;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (de->d_name[0] == '.' || len <= 5 || strcmp(de->d_name + len - 5, ".conf") != 0)
            continue;
        if (n == CONF_MAX_DROPINS) {
            conf_error(L, dir, 0, "more than %d drop-in files; only the first %d are read",
                       CONF_MAX_DROPINS, CONF_MAX_DROPINS);
            break;
        }
        if (!(names[n] = strdup(de->d_name))) {
            r = -ENOMEM;
            break;
        }
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof(names[0]), cmp_names);
    for (size_t i = 0; i < n; i++) {
        char file[4096 + 256];
        snprintf(file, sizeof(file), "%s/%s", dir, names[i]);
        if (r == 0 && !L->stopped && load_file(L, file) == -ENOMEM)
            r = -ENOMEM;
        free(names[i]);
    }
    return r;
}

/* ---- public ----------------------------------------------------------------------- */

static struct conf *conf_alloc(const struct conf_ctx *ctx)
{
    struct conf *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    for (int s = 0; s < CS__FIXED; s++)
        conf_sect_defaults((enum conf_sect)s, sect_ptr(c, (enum conf_sect)s, 0), ctx);
    return c;
}

static const char *tzdir(void)
{
    const char *d = getenv("TZDIR");
    return d && *d ? d : "/usr/share/zoneinfo";
}

struct conf *conf_new_default(void)
{
    struct conf_ctx ctx = {tzdir()};
    return conf_alloc(&ctx);
}

int conf_load(const char *path, struct conf **out, conf_err_fn err, void *ud)
{
    struct conf_loader L = {.err = err, .ud = ud, .ctx = {tzdir()}};
    int r;
    *out = NULL;
    if (!(L.c = conf_alloc(&L.ctx)))
        return -ENOMEM;
    r = load_file(&L, path);
    if (r == 0)
        r = load_dropins(&L, path);
    if (r == 0 && !L.stopped)
        conf_check(&L);
    L.c->publish.endpoints_explicit =
        L.fixed[CS_PUBLISH].at[conf_key_slot(conf_key_find(CS_PUBLISH, "endpoint"))].file != NULL;
    for (int k = 0; k < CS__COUNT - CS__FIXED; k++)
        free(L.named[k]);
    if (r == 0 && L.n_errors > 0)
        r = -L.n_errors;
    if (r < 0) {
        conf_free(L.c);
        return r;
    }
    *out = L.c;
    return 0;
}

void conf_free(struct conf *c)
{
    if (!c)
        return;
    for (int s = 0; s < CS__COUNT; s++) {
        size_t *n = NULL, elem, count = 1;
        if (s >= CS__FIXED) {
            named_array(c, (enum conf_sect)s, &n, &elem);
            count = *n;
        }
        for (size_t i = 0; i < count; i++)
            conf_sect_release((enum conf_sect)s, sect_ptr(c, (enum conf_sect)s, i));
    }
    free(c->participants);
    free(c->sources);
    free(c->nudges);
    for (size_t i = 0; i < c->n_files; i++)
        free(c->files[i]);
    free(c->files);
    free(c);
}

const struct conf_participant *conf_participant(const struct conf *c, const char *id)
{
    for (size_t i = 0; i < c->n_participants; i++)
        if (strcmp(c->participants[i].id, id) == 0)
            return &c->participants[i];
    return NULL;
}

const struct conf_source *conf_source(const struct conf *c, const char *name)
{
    for (size_t i = 0; i < c->n_sources; i++)
        if (strcmp(c->sources[i].name, name) == 0)
            return &c->sources[i];
    return NULL;
}

const struct conf_nudge *conf_nudge(const struct conf *c, const char *name)
{
    for (size_t i = 0; i < c->n_nudges; i++)
        if (strcmp(c->nudges[i].name, name) == 0)
            return &c->nudges[i];
    return NULL;
}
