/* The nudge `when` expression: a tiny recursive-descent parser into a node array. Grammar
 * (docs/config.md, "Nudge conditions"):
 *
 *   expr      = and { "or" and }
 *   and       = unary { "and" unary }
 *   unary     = "not" unary | "(" expr ")" | condition
 *   condition = FEATURE OP NUMBER
 *             | FEATURE ("shifts" | "rises" | "falls") OP NUMBER "from" "median" DAYS
 *   FEATURE   = [a-z0-9_]+ "." [a-z0-9_]+        OP = < <= > >= == !=
 *   NUMBER    = [-] digits [. digits]            DAYS = digits "d"
 *
 * Hand-written because no packaged library parses a grammar this small better than forty
 * lines do, and every error must carry the column it refers to. Recursion is bounded by
 * CONF_WHEN_MAX_DEPTH, node count by CONF_WHEN_MAX_CONDITIONS. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/conf_internal.h"

#define MEDIAN_DAYS_MIN 3
#define MEDIAN_DAYS_MAX 90
#define MAX_TOKENS CONF_STR_SIZE
#define MAX_NODES (4 * CONF_WHEN_MAX_CONDITIONS)

enum tok_kind { TK_END, TK_LPAREN, TK_RPAREN, TK_OP, TK_WORD, TK_BAD };

struct tok {
    enum tok_kind kind;
    int pos, len;
    enum conf_cmp cmp;
};

struct parser {
    const char *text;
    struct tok toks[MAX_TOKENS + 1];
    int i;
    struct conf_expr nodes[MAX_NODES];
    int n_nodes, n_conds, depth;
    char *msg;
    size_t cap;
    int col;
    int failed;
};

static const char *const op_names[] = {"<", "<=", ">", ">=", "==", "!="};

static int is_word_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.';
}

static void lex(struct parser *p)
{
    const char *s = p->text;
    int n = 0, i = 0;
    while (s[i] && n < MAX_TOKENS) {
        struct tok *t = &p->toks[n];
        if (s[i] == ' ' || s[i] == '\t') {
            i++;
            continue;
        }
        t->pos = i;
        t->len = 1;
        if (s[i] == '(' || s[i] == ')') {
            t->kind = s[i] == '(' ? TK_LPAREN : TK_RPAREN;
        } else if (strchr("<>=!", s[i])) {
            int eq = s[i + 1] == '=';
            t->kind = TK_OP;
            t->len = 1 + eq;
            switch (s[i]) {
            case '<': t->cmp = eq ? CONF_CMP_LE : CONF_CMP_LT; break;
            case '>': t->cmp = eq ? CONF_CMP_GE : CONF_CMP_GT; break;
            case '=': t->cmp = CONF_CMP_EQ; if (!eq) t->kind = TK_BAD; break;
            default: t->cmp = CONF_CMP_NE; if (!eq) t->kind = TK_BAD; break;
            }
        } else if (is_word_char(s[i]) || (s[i] == '-' && is_word_char(s[i + 1]))) {
            int j = i + 1;
            while (is_word_char(s[j]))
                j++;
            t->kind = TK_WORD;
            t->len = j - i;
        } else {
            t->kind = TK_BAD;
        }
        i += t->len;
        n++;
    }
    p->toks[n].kind = TK_END;
    p->toks[n].pos = (int)strlen(s);
    p->toks[n].len = 0;
}

__attribute__((format(printf, 3, 4)))
static int fail(struct parser *p, const struct tok *at, const char *fmt, ...)
{
    if (!p->failed) {
        va_list ap;
        va_start(ap, fmt);
        p->failed = 1;
        p->col = at->pos;
        vsnprintf(p->msg, p->cap, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Anything unexpected at token t: specific hints for the classic slips. */
static int fail_unexpected(struct parser *p, const struct tok *t, const char *expected)
{
    char c = p->text[t->pos];
    if (t->kind == TK_BAD && (c == '&' || c == '|'))
        return fail(p, t, "unexpected \"%c\" (write \"%s\")", c, c == '&' ? "and" : "or");
    if (t->kind == TK_BAD && c == '=')
        return fail(p, t, "%s", "unexpected \"=\" (compare with \"==\")");
    if (t->kind == TK_BAD && c == '!')
        return fail(p, t, "%s", "unexpected \"!\" (write \"not\" or \"!=\")");
    if (t->kind == TK_BAD && (c < 0x21 || c > 0x7e))
        return fail(p, t, "unexpected byte 0x%02x (expressions are plain ASCII)",
                    (unsigned)(unsigned char)c);
    if (t->kind == TK_BAD)
        return fail(p, t, "unexpected character \"%c\"", c);
    if (t->kind == TK_END)
        return fail(p, t, "unexpected end of expression (expected %s)", expected);
    return fail(p, t, "expected %s", expected);
}

static int word_is(const struct parser *p, const struct tok *t, const char *w)
{
    return t->kind == TK_WORD && (size_t)t->len == strlen(w) &&
           strncmp(p->text + t->pos, w, (size_t)t->len) == 0;
}

static int new_node(struct parser *p, enum conf_expr_kind kind, int a, int b)
{
    if (p->n_nodes == MAX_NODES)
        return fail(p, &p->toks[p->i], "%s", "expression too complex");
    struct conf_expr *e = &p->nodes[p->n_nodes];
    memset(e, 0, sizeof(*e));
    e->kind = kind;
    e->a = a;
    e->b = b;
    return p->n_nodes++;
}

static int valid_feature(const char *s, int len)
{
    int dot = -1;
    if (len >= CONF_FEATURE_SIZE)
        return 0;
    for (int i = 0; i < len; i++) {
        char c = s[i];
        if (c == '.') {
            if (dot >= 0)
                return 0;
            dot = i;
        } else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) {
            return 0;
        }
    }
    return dot > 0 && dot < len - 1;
}

static int parse_number(const struct parser *p, const struct tok *t, double *out)
{
    char buf[64];
    if (t->kind != TK_WORD || t->len >= (int)sizeof(buf))
        return -1;
    memcpy(buf, p->text + t->pos, (size_t)t->len);
    buf[t->len] = 0;
    const char *s = buf + (buf[0] == '-');
    size_t ip = strspn(s, "0123456789");
    if (ip == 0)
        return -1;
    if (s[ip] == '.') {
        size_t fp = strspn(s + ip + 1, "0123456789");
        if (fp == 0 || s[ip + 1 + fp])
            return -1;
    } else if (s[ip]) {
        return -1;
    }
    *out = strtod(buf, NULL);
    return 0;
}

static int parse_expr(struct parser *p);

static int parse_condition(struct parser *p)
{
    struct tok *t = &p->toks[p->i];
    char feature[CONF_FEATURE_SIZE];
    enum conf_rel rel = CONF_REL_VALUE;
    if (t->kind != TK_WORD)
        return fail_unexpected(p, t, "a feature name such as engage.minutes");
    if (!valid_feature(p->text + t->pos, t->len)) {
        char name[CONF_STR_SIZE];
        snprintf(name, sizeof(name), "%.*s", t->len, p->text + t->pos);
        return fail(p, t, "invalid feature name \"%s\" (expected family.name in lowercase, "
                    "e.g. engage.minutes)", name);
    }
    snprintf(feature, sizeof(feature), "%.*s", t->len, p->text + t->pos);
    t = &p->toks[++p->i];
    if (word_is(p, t, "shifts"))
        rel = CONF_REL_SHIFTS;
    else if (word_is(p, t, "rises"))
        rel = CONF_REL_RISES;
    else if (word_is(p, t, "falls"))
        rel = CONF_REL_FALLS;
    if (rel != CONF_REL_VALUE)
        t = &p->toks[++p->i];
    if (t->kind != TK_OP) {
        char what[CONF_FEATURE_SIZE + 64];
        snprintf(what, sizeof(what), "<, <=, >, >=, ==, !=%s after \"%s\"",
                 rel == CONF_REL_VALUE ? " or shifts/rises/falls" : "", feature);
        return fail_unexpected(p, t, what);
    }
    enum conf_cmp cmp = t->cmp;
    double value;
    t = &p->toks[++p->i];
    if (parse_number(p, t, &value) < 0) {
        char what[64];
        snprintf(what, sizeof(what), "a number after \"%s\"", op_names[cmp]);
        return fail_unexpected(p, t, what);
    }
    t = &p->toks[++p->i];
    int days = 0;
    if (rel != CONF_REL_VALUE) {
        if (!word_is(p, t, "from") || !word_is(p, t + 1, "median"))
            return fail_unexpected(p, word_is(p, t, "from") ? t + 1 : t,
                                   "\"from median Nd\" after the number");
        t += 2;
        p->i += 2;
        const char *s = p->text + t->pos;
        int nd = 0;
        while (nd < t->len && s[nd] >= '0' && s[nd] <= '9')
            nd++;
        if (t->kind != TK_WORD || nd == 0 || nd > 3 || nd != t->len - 1 || s[nd] != 'd')
            return fail_unexpected(p, t, "a number of days after \"median\", e.g. 14d");
        days = atoi(s);
        if (days < MEDIAN_DAYS_MIN || days > MEDIAN_DAYS_MAX)
            return fail(p, t, "%s", "the median window must be 3d..90d");
        p->i++;
    }
    if (++p->n_conds > CONF_WHEN_MAX_CONDITIONS)
        return fail(p, &p->toks[p->i], "%s", "too many conditions (max 32)");
    int n = new_node(p, CONF_EXPR_CMP, -1, -1);
    if (n < 0)
        return -1;
    struct conf_expr *e = &p->nodes[n];
    memcpy(e->feature, feature, sizeof(feature));
    e->rel = rel;
    e->median_days = days;
    e->cmp = cmp;
    e->value = value;
    return n;
}

static int parse_unary(struct parser *p)
{
    struct tok *t = &p->toks[p->i];
    int is_not = word_is(p, t, "not");
    if (is_not || t->kind == TK_LPAREN) {
        if (++p->depth > CONF_WHEN_MAX_DEPTH)
            return fail(p, t, "%s", "expression nested too deeply (max 16)");
        p->i++;
        int a = is_not ? parse_unary(p) : parse_expr(p);
        if (a < 0)
            return -1;
        p->depth--;
        if (is_not)
            return new_node(p, CONF_EXPR_NOT, a, -1);
        t = &p->toks[p->i];
        if (t->kind != TK_RPAREN) {
            if (t->kind == TK_END)
                return fail(p, t, "%s", "missing \")\"");
            return fail_unexpected(p, t, "\")\", \"and\" or \"or\"");
        }
        p->i++;
        return a;
    }
    return parse_condition(p);
}

static int parse_and(struct parser *p)
{
    int a = parse_unary(p);
    while (a >= 0 && word_is(p, &p->toks[p->i], "and")) {
        p->i++;
        int b = parse_unary(p);
        a = b < 0 ? -1 : new_node(p, CONF_EXPR_AND, a, b);
    }
    return a;
}

static int parse_expr(struct parser *p)
{
    int a = parse_and(p);
    while (a >= 0 && word_is(p, &p->toks[p->i], "or")) {
        p->i++;
        int b = parse_and(p);
        a = b < 0 ? -1 : new_node(p, CONF_EXPR_OR, a, b);
    }
    return a;
}

int conf_when_parse(const char *text, struct conf_when *out, char *msg, size_t cap, int *col)
{
    struct parser *p = calloc(1, sizeof(*p));
    int r = -EINVAL;
    *col = -1;
    if (!p)
        return -ENOMEM;
    p->text = text;
    p->msg = msg;
    p->cap = cap;
    lex(p);
    int root = -1;
    if (p->toks[0].kind == TK_END) {
        fail(p, &p->toks[0], "%s", "empty expression");
    } else {
        root = parse_expr(p);
        struct tok *t = &p->toks[p->i];
        if (root >= 0 && t->kind == TK_RPAREN)
            root = fail(p, t, "%s", "unexpected \")\"");
        else if (root >= 0 && t->kind != TK_END)
            root = fail_unexpected(p, t, "\"and\", \"or\" or the end of the expression");
    }
    if (root >= 0) {
        out->nodes = malloc((size_t)p->n_nodes * sizeof(*out->nodes));
        r = -ENOMEM;
        if (out->nodes) {
            memcpy(out->nodes, p->nodes, (size_t)p->n_nodes * sizeof(*out->nodes));
            out->n = (size_t)p->n_nodes;
            out->root = root;
            r = 0;
        }
    } else {
        *col = p->col;
    }
    free(p);
    return r;
}
