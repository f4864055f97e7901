/* reader.c — document sources for ingest. */
#include "reader.h"
#include "mb_mem.h"

#include <ctype.h>
#include <czmq.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <utf8proc.h>
#include <zlib.h>
#include <fcntl.h>
#include <stdarg.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>
#include <libxml/HTMLparser.h>
#include <libxml/tree.h>

static int s_ends(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcasecmp(s + a - b, suffix) == 0;
}

/* Reads a whole file, gunzipping if it is gzip (also dictzip). */
static char *s_slurp(const char *path, size_t *len) {
    gzFile gz = gzopen(path, "rb");
    if (!gz) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    int got;
    while ((got = gzread(gz, buf + n, (unsigned)(cap - n))) > 0) {
        n += (size_t)got;
        if (n == cap) buf = mb_xrealloc(buf, (cap *= 2) + 1);
    }
    int bad = got < 0;
    gzclose(gz);
    if (bad) {
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

static int s_valid_text(const char *s, size_t n) {
    if (memchr(s, 0, n)) return 0;
    return utf8proc_decompose((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, NULL, 0,
                              0) >= 0;
}

/* Reads one line of any length; returns NULL at EOF. */
static char *s_gz_line(gzFile gz, char **buf, size_t *cap) {
    size_t n = 0;
    for (;;) {
        if (*cap - n < 2) *buf = mb_xrealloc(*buf, *cap = *cap * 2 + 4096);
        if (!gzgets(gz, *buf + n, (int)(*cap - n))) return n ? *buf : NULL;
        n += strlen(*buf + n);
        if (n && (*buf)[n - 1] == '\n') return *buf;
    }
}

/* One reading: the hooks, the stats, the file counter. */
typedef struct {
    const mb_reader_hooks_t *h;
    mb_reader_stats_t *st;
    size_t ordinal;
} rctx_t;

/* A file that cannot be used: counted, reported, skipped. */
static void s_file_error(rctx_t *cx, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void s_file_error(rctx_t *cx, const char *path, const char *fmt, ...) {
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    cx->st->skipped_files++;
    if (cx->h->error)
        cx->h->error(cx->h->arg, path, why);
    else
        fprintf(stderr, "moebus: skipping %s: %s\n", path, why);
}

static int s_emit(rctx_t *cx, const mb_rdoc_t *d) {
    cx->st->docs++;
    return cx->h->doc(cx->h->arg, d);
}

static int s_read_jsonl(const char *path, rctx_t *cx) {
    gzFile gz = gzopen(path, "rb");
    if (!gz) {
        s_file_error(cx, path, "%s", strerror(errno));
        return 0;
    }
    char abs[PATH_MAX];
    if (!realpath(path, abs)) snprintf(abs, sizeof abs, "%s", path);
    char *buf = NULL;
    size_t cap = 0, lineno = 0, bad = 0;
    int stop = 0;
    while (!stop && s_gz_line(gz, &buf, &cap)) {
        lineno++;
        size_t len = strlen(buf);
        while (len && isspace((unsigned char)buf[len - 1]))
            buf[--len] = 0;
        if (!len) continue;
        json_error_t jerr;
        json_t *j = json_loadb(buf, len, 0, &jerr);
        const char *id = j ? json_string_value(json_object_get(j, "_id")) : NULL;
        const char *text = j ? json_string_value(json_object_get(j, "text")) : NULL;
        if (!id || !text || !*id) {
            cx->st->bad_lines++;
            if (bad++ < 5) {
                char where[64];
                snprintf(where, sizeof where, "line %zu", lineno);
                char why[300];
                snprintf(why, sizeof why,
                         "%s: not a BEIR corpus record (needs \"_id\" and \"text\")%s%s",
                         where, j ? "" : ": ", j ? "" : jerr.text);
                if (cx->h->error)
                    cx->h->error(cx->h->arg, path, why);
                else
                    fprintf(stderr, "moebus: %s: %s\n", path, why);
            }
            json_decref(j);
            continue;
        }
        const char *title = json_string_value(json_object_get(j, "title"));
        mb_rdoc_t d = {id, title ? title : "", text, abs};
        stop = s_emit(cx, &d);
        json_decref(j);
    }
    free(buf);
    gzclose(gz);
    return stop;
}

/* dictd's base64 digits. */
static long s_b64(const char *s, size_t n) {
    static const char *digits =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        const char *p = strchr(digits, s[i]);
        if (!p || !s[i]) return -1;
        v = v * 64 + (p - digits);
    }
    return v;
}

static int s_read_dictd(const char *index_path, rctx_t *cx) {
    char base[PATH_MAX], dict_path[PATH_MAX + 16], name[PATH_MAX];
    snprintf(base, sizeof base, "%.*s", (int)(strlen(index_path) - 6), index_path);
    snprintf(dict_path, sizeof dict_path, "%s.dict.dz", base);
    struct stat sb;
    if (stat(dict_path, &sb) != 0) snprintf(dict_path, sizeof dict_path, "%s.dict", base);
    const char *slash = strrchr(base, '/');
    snprintf(name, sizeof name, "%s", slash ? slash + 1 : base);
    size_t dlen = 0, ilen = 0;
    char *dict = s_slurp(dict_path, &dlen);
    char *index = s_slurp(index_path, &ilen);
    if (!dict || !index) {
        s_file_error(cx, index_path, "cannot read it or its .dict/.dict.dz");
        free(dict);
        free(index);
        return 0;
    }
    /* Several headwords may point at one entry: keep the first. One headword
     * may have several entries: number the later ones (NAME:word#2). */
    char abs[PATH_MAX];
    if (!realpath(index_path, abs)) snprintf(abs, sizeof abs, "%s", index_path);
    zhashx_t *offsets = zhashx_new(), *ids = zhashx_new();
    int stop = 0;
    char *save = NULL;
    for (char *line = strtok_r(index, "\n", &save); line && !stop;
         line = strtok_r(NULL, "\n", &save)) {
        char *t1 = strchr(line, '\t');
        char *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
        if (!t2) continue;
        *t1 = 0;
        long off = s_b64(t1 + 1, (size_t)(t2 - t1 - 1));
        long len = s_b64(t2 + 1, strcspn(t2 + 1, "\t\r"));
        if (off < 0 || len <= 0 || (size_t)(off + len) > dlen) continue;
        if (strncmp(line, "00-database", 11) == 0 || strncmp(line, "00database", 10) == 0)
            continue;
        char key[32];
        snprintf(key, sizeof key, "%ld", off);
        if (zhashx_insert(offsets, key, (void *)1) != 0) continue;
        char *text = strndup(dict + off, (size_t)len);
        char id[1024];
        snprintf(id, sizeof id, "%.200s:%.700s", name, line);
        for (int nth = 2; zhashx_insert(ids, id, (void *)1) != 0; nth++)
            snprintf(id, sizeof id, "%.200s:%.700s#%d", name, line, nth);
        if (!s_valid_text(text, strlen(text))) {
            cx->st->bad_lines++;
            free(text);
            continue;
        }
        mb_rdoc_t d = {id, line, text, abs};
        stop = s_emit(cx, &d);
        free(text);
    }
    zhashx_destroy(&offsets);
    zhashx_destroy(&ids);
    free(dict);
    free(index);
    return stop;
}

/* ---- HTML (libxml2's HTML parser: real-world tag soup, recovered) ---- */

typedef struct {
    char *buf;
    size_t n, cap;
    int space; /* last emitted char was whitespace (or nothing yet) */
} textbuf_t;

static void s_tb_put(textbuf_t *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap)
        b->buf = mb_xrealloc(b->buf, b->cap = (b->n + n) * 2 + 256);
    memcpy(b->buf + b->n, s, n);
    b->n += n;
    b->buf[b->n] = 0;
}

/* Text with runs of whitespace collapsed to one space. */
static void s_tb_text(textbuf_t *b, const char *s) {
    for (; *s; s++) {
        if (isspace((unsigned char)*s)) {
            if (!b->space) s_tb_put(b, " ", 1);
            b->space = 1;
        } else {
            s_tb_put(b, s, 1);
            b->space = 0;
        }
    }
}

/* A block boundary: a blank line, so the chunker sees a paragraph. */
static void s_tb_break(textbuf_t *b) {
    while (b->n && b->buf[b->n - 1] == ' ')
        b->buf[--b->n] = 0;
    if (b->n && (b->n < 2 || strcmp(b->buf + b->n - 2, "\n\n") != 0))
        s_tb_put(b, "\n\n", 2);
    b->space = 1;
}

static int s_tag_in(const char *name, const char *const *list) {
    for (; *list; list++)
        if (strcasecmp(name, *list) == 0) return 1;
    return 0;
}

static void s_html_walk(xmlNode *n, textbuf_t *b, textbuf_t *title) {
    static const char *const skip[] = {"script", "style",  "noscript", "template", "svg",
                                       "head",   "iframe", "object",   "canvas",   NULL};
    static const char *const block[] = {
        "p",          "div",     "br",     "li",     "ul",  "ol",         "h1",
        "h2",         "h3",      "h4",     "h5",     "h6",  "tr",         "table",
        "section",    "article", "header", "footer", "pre", "blockquote", "dd",
        "dt",         "dl",      "hr",     "main",   "nav", "aside",      "figure",
        "figcaption", "td",      "th",     NULL};
    for (; n; n = n->next) {
        if (n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) {
            if (n->content) s_tb_text(b, (const char *)n->content);
            continue;
        }
        if (n->type != XML_ELEMENT_NODE) continue;
        const char *name = (const char *)n->name;
        if (strcasecmp(name, "title") == 0 && title->n == 0) {
            xmlChar *t = xmlNodeGetContent(n);
            if (t) s_tb_text(title, (const char *)t);
            xmlFree(t);
            continue;
        }
        if (strcasecmp(name, "head") == 0) { /* only its title */
            textbuf_t head = {0};            /* whitespace between head's tags */
            s_html_walk(n->children, &head, title);
            free(head.buf);
            continue;
        }
        if (s_tag_in(name, skip)) continue;
        int blk = s_tag_in(name, block);
        if (blk) s_tb_break(b);
        s_html_walk(n->children, b, title);
        if (blk) s_tb_break(b);
    }
}

/* Text and <title> of an HTML document (malloc'ed), or NULL. */
static char *s_html_text(const char *html, size_t len, const char *path, char **title) {
    htmlDocPtr doc = htmlReadMemory(html, (int)len, path, NULL,
                                    HTML_PARSE_RECOVER | HTML_PARSE_NOERROR |
                                        HTML_PARSE_NOWARNING | HTML_PARSE_NONET);
    *title = NULL;
    if (!doc) return NULL;
    textbuf_t b = {0}, t = {0};
    s_tb_put(&b, "", 0);
    s_tb_put(&t, "", 0);
    b.space = t.space = 1;
    s_html_walk(xmlDocGetRootElement(doc), &b, &t);
    xmlFreeDoc(doc);
    while (t.n && t.buf[t.n - 1] == ' ')
        t.buf[--t.n] = 0;
    *title = t.buf;
    while (b.n && isspace((unsigned char)b.buf[b.n - 1]))
        b.buf[--b.n] = 0;
    return b.buf;
}

/* ---- PDF, through poppler's pdftotext ---- */

/* Looked up for each PDF (a few stat calls): installing poppler-utils while
 * a service runs takes effect at once. */
static int s_have_pdftotext(void) {
    const char *path = getenv("PATH");
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path ? path : "/usr/bin:/bin");
    int have = 0;
    for (char *save = NULL, *dir = strtok_r(buf, ":", &save); dir && !have;
         dir = strtok_r(NULL, ":", &save)) {
        char exe[4200];
        snprintf(exe, sizeof exe, "%s/pdftotext", dir);
        have = access(exe, X_OK) == 0;
    }
    return have;
}

/* Runs pdftotext PATH - and returns its UTF-8 output (malloc'ed) or NULL with
 * why set. Pages are separated by form feeds: made paragraph breaks. */
static char *s_pdf_text(const char *path, char *why, size_t whysz) {
    if (!s_have_pdftotext()) {
        snprintf(why, whysz,
                 "PDF needs pdftotext, which is not installed (Debian: apt-get install "
                 "poppler-utils)");
        return NULL;
    }
    int fd[2];
    if (pipe(fd) != 0) {
        snprintf(why, whysz, "pipe: %s", strerror(errno));
        return NULL;
    }
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd[1], 1);
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) dup2(null, 2);
        close(fd[0]);
        close(fd[1]);
        execlp("pdftotext", "pdftotext", "-q", "-enc", "UTF-8", "--", path, "-",
               (char *)NULL);
        _exit(127);
    }
    close(fd[1]);
    size_t cap = 1 << 16, n = 0;
    char *out = malloc(cap + 1);
    ssize_t got;
    while (pid > 0 && (got = read(fd[0], out + n, cap - n)) > 0) {
        n += (size_t)got;
        if (n == cap) out = mb_xrealloc(out, (cap *= 2) + 1);
    }
    close(fd[0]);
    int status = 0;
    if (pid > 0) waitpid(pid, &status, 0);
    out[n] = 0;
    if (pid < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        snprintf(why, whysz, "pdftotext failed (%s %d): not a readable PDF?",
                 pid < 0 ? "fork" : "exit status",
                 pid < 0             ? errno
                 : WIFEXITED(status) ? WEXITSTATUS(status)
                                     : -1);
        free(out);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        if (out[i] == '\f') out[i] = '\n';
    return out;
}

/* ---- plain files: text, Markdown, HTML, PDF; detected by name, else by
 * content ---- */

typedef enum { F_TEXT, F_HTML, F_PDF, F_JSONL, F_BINARY } ftype_t;

static ftype_t s_sniff(const char *buf, size_t n) {
    if (n >= 5 && memcmp(buf, "%PDF-", 5) == 0) return F_PDF;
    size_t i = 0;
    if (n >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) i = 3; /* BOM */
    while (i < n && isspace((unsigned char)buf[i]))
        i++;
    if (n - i >= 9 && (strncasecmp(buf + i, "<!doctype", 9) == 0 ||
                       strncasecmp(buf + i, "<html", 5) == 0))
        return F_HTML;
    if (memchr(buf, 0, n < 8192 ? n : 8192)) return F_BINARY;
    if (i < n && buf[i] == '{') {
        /* a JSON object with "_id" on the first line */
        const char *nl = memchr(buf + i, '\n', n - i);
        json_t *j = json_loadb(buf + i, nl ? (size_t)(nl - buf - i) : n - i, 0, NULL);
        int beir = j && json_is_string(json_object_get(j, "_id"));
        json_decref(j);
        if (beir) return F_JSONL;
    }
    return F_TEXT;
}

static int s_read_file(const char *path, ftype_t type, rctx_t *cx) {
    size_t len = 0;
    char *raw = type == F_PDF ? NULL : s_slurp(path, &len);
    if (type != F_PDF && !raw) {
        s_file_error(cx, path, "%s", errno ? strerror(errno) : "cannot read it");
        return 0;
    }
    if ((int)type < 0) type = s_sniff(raw, len); /* by content */
    if (type == F_JSONL) {
        free(raw);
        return s_read_jsonl(path, cx);
    }
    char abs[PATH_MAX];
    if (!realpath(path, abs)) snprintf(abs, sizeof abs, "%s", path);
    const char *slash = strrchr(abs, '/');
    char *text = raw, *title = NULL;
    if (type == F_BINARY) {
        s_file_error(cx, path, "binary file (not text, HTML, PDF or JSONL)");
        free(raw);
        return 0;
    }
    if (type == F_PDF) {
        free(raw); /* read only to sniff it (a PDF without .pdf): pdftotext reads */
        raw = NULL;
        char why[300];
        text = s_pdf_text(abs, why, sizeof why);
        if (!text) {
            s_file_error(cx, path, "%s", why);
            return 0;
        }
        len = strlen(text);
    }
    if (!s_valid_text(text, len)) {
        s_file_error(cx, path, "%s",
                     memchr(text, 0, len) ? "binary file (holds NUL bytes)"
                                          : "not valid UTF-8 (convert it first, e.g. "
                                            "iconv -f latin1 -t utf-8)");
        free(text);
        return 0;
    }
    if (type == F_HTML) {
        text = s_html_text(raw, len, abs, &title);
        free(raw);
        if (!text) {
            s_file_error(cx, path, "cannot parse it as HTML");
            return 0;
        }
        len = strlen(text);
    }
    mb_rdoc_t d = {abs, title && *title ? title : (slash ? slash + 1 : abs), text, abs};
    int stop = 0;
    if (len)
        stop = s_emit(cx, &d);
    else
        cx->st->docs++; /* empty: nothing to index, not an error */
    free(text);
    free(title);
    return stop;
}

static int s_cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The type a name says, or -1: look at the content. */
static int s_type_by_name(const char *path) {
    static const char *const text[] = {".txt",  ".md",  ".markdown", ".rst",
                                       ".text", ".org", NULL};
    for (int i = 0; text[i]; i++)
        if (s_ends(path, text[i])) return F_TEXT;
    if (s_ends(path, ".html") || s_ends(path, ".htm") || s_ends(path, ".xhtml"))
        return F_HTML;
    if (s_ends(path, ".pdf")) return F_PDF;
    if (s_ends(path, ".jsonl") || s_ends(path, ".jsonl.gz")) return F_JSONL;
    return -1;
}

/* Calls fn for each readable file under path, in sorted order; stops when fn
 * returns non-zero (and returns that). */
typedef int(s_file_fn)(void *arg, const char *path, const struct stat *sb, int explicit);

static int s_walk(const char *path, s_file_fn *fn, void *arg, int explicit, rctx_t *cx) {
    struct stat sb;
    if (stat(path, &sb) != 0) {
        if (cx) s_file_error(cx, path, "%s", strerror(errno));
        return 0;
    }
    if (S_ISDIR(sb.st_mode)) {
        DIR *dir = opendir(path);
        if (!dir) {
            if (cx) s_file_error(cx, path, "%s", strerror(errno));
            return 0;
        }
        size_t n = 0, cap = 64;
        char **names = malloc(cap * sizeof *names);
        struct dirent *e;
        while ((e = readdir(dir))) {
            if (e->d_name[0] == '.') continue;
            if (n == cap) names = mb_xrealloc(names, (cap *= 2) * sizeof *names);
            names[n++] = strdup(e->d_name);
        }
        closedir(dir);
        qsort(names, n, sizeof *names, s_cmp_str);
        int stop = 0;
        for (size_t i = 0; i < n; i++) {
            char child[PATH_MAX];
            snprintf(child, sizeof child, "%s/%s", path, names[i]);
            if (!stop) stop = s_walk(child, fn, arg, 0, cx);
            free(names[i]);
        }
        free(names);
        return stop;
    }
    if (!S_ISREG(sb.st_mode)) return 0;
    return fn(arg, path, &sb, explicit);
}

static int s_read_one(void *arg, const char *path, const struct stat *sb, int explicit) {
    rctx_t *cx = arg;
    (void)explicit;
    if (s_ends(path, ".dict") || s_ends(path, ".dict.dz")) return 0; /* via .index */
    if (cx->h->file && cx->h->file(cx->h->arg, path, cx->ordinal++, (int64_t)sb->st_size))
        return 0; /* the caller skips it (a resumed job did it) */
    cx->st->files++;
    errno = 0;
    if (s_ends(path, ".index")) return s_read_dictd(path, cx);
    int type = s_type_by_name(path);
    if (type == F_JSONL) return s_read_jsonl(path, cx);
    return s_read_file(path, (ftype_t)type, cx);
}

int mb_reader_walk(char *const *paths, size_t n, const mb_reader_hooks_t *hooks,
                   mb_reader_stats_t *stats) {
    memset(stats, 0, sizeof *stats);
    rctx_t cx = {hooks, stats, 0};
    for (size_t i = 0; i < n; i++)
        if (s_walk(paths[i], s_read_one, &cx, 1, &cx)) return 1;
    return 0;
}

int mb_reader_run(char *const *paths, size_t n, mb_reader_fn *fn, void *arg,
                  mb_reader_stats_t *stats) {
    mb_reader_hooks_t h = {.doc = fn, .arg = arg};
    return mb_reader_walk(paths, n, &h, stats);
}

typedef struct {
    int64_t files, bytes;
} sizes_t;

static int s_size_one(void *arg, const char *path, const struct stat *sb, int explicit) {
    sizes_t *s = arg;
    (void)explicit;
    if (s_ends(path, ".dict") || s_ends(path, ".dict.dz")) return 0;
    s->files++;
    s->bytes += (int64_t)sb->st_size;
    return 0;
}

void mb_reader_size(char *const *paths, size_t n, int64_t *files, int64_t *bytes) {
    sizes_t s = {0, 0};
    for (size_t i = 0; i < n; i++)
        s_walk(paths[i], s_size_one, &s, 1, NULL);
    *files = s.files;
    *bytes = s.bytes;
}

size_t mb_chunk_text(const char *text, size_t max_words, size_t overlap, char ***chunks) {
    /* word boundaries: starts[i], ends[i] */
    size_t cap = 256, nw = 0;
    size_t *starts = malloc(cap * sizeof *starts), *ends = malloc(cap * sizeof *ends);
    for (size_t i = 0; text[i];) {
        while (text[i] && isspace((unsigned char)text[i]))
            i++;
        if (!text[i]) break;
        if (nw == cap) {
            cap *= 2;
            starts = mb_xrealloc(starts, cap * sizeof *starts);
            ends = mb_xrealloc(ends, cap * sizeof *ends);
        }
        starts[nw] = i;
        while (text[i] && !isspace((unsigned char)text[i]))
            i++;
        ends[nw++] = i;
    }
    if (overlap >= max_words) overlap = max_words / 4;
    size_t n = 0, ccap = 4;
    *chunks = malloc(ccap * sizeof **chunks);
    for (size_t w = 0; w < nw;) {
        size_t last = w + max_words < nw ? w + max_words : nw;
        if (n == ccap) *chunks = mb_xrealloc(*chunks, (ccap *= 2) * sizeof **chunks);
        (*chunks)[n++] = strndup(text + starts[w], ends[last - 1] - starts[w]);
        if (last == nw) break;
        w = last - overlap;
    }
    free(starts);
    free(ends);
    return n;
}

void mb_chunks_free(char **chunks, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(chunks[i]);
    free(chunks);
}

static uint64_t s_fnv(uint64_t h, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

void mb_content_hash(const char *title, const char *text, char out[33]) {
    uint64_t a = s_fnv(1469598103934665603ULL, title, strlen(title));
    a = s_fnv(a, "\x1f", 1);
    a = s_fnv(a, text, strlen(text));
    uint64_t b = s_fnv(0x84222325cbf29ce4ULL ^ strlen(text), text, strlen(text));
    b = s_fnv(b, title, strlen(title));
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)a, (unsigned long long)b);
}
