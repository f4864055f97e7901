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

static int s_read_jsonl(const char *path, mb_reader_fn *fn, void *arg,
                        mb_reader_stats_t *st) {
    gzFile gz = gzopen(path, "rb");
    if (!gz) {
        fprintf(stderr, "moebus: skipping %s: %s\n", path, strerror(errno));
        st->skipped_files++;
        return 0;
    }
    char *buf = NULL;
    size_t cap = 0, lineno = 0;
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
            if (st->bad_lines++ < 5)
                fprintf(stderr,
                        "moebus: %s:%zu: not a BEIR corpus line (needs \"_id\" and "
                        "\"text\")%s%s\n",
                        path, lineno, j ? "" : ": ", j ? "" : jerr.text);
            json_decref(j);
            continue;
        }
        const char *title = json_string_value(json_object_get(j, "title"));
        mb_rdoc_t d = {id, title ? title : "", text, path};
        st->docs++;
        stop = fn(arg, &d);
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

static int s_read_dictd(const char *index_path, mb_reader_fn *fn, void *arg,
                        mb_reader_stats_t *st) {
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
        fprintf(stderr, "moebus: skipping %s: cannot read it or its .dict/.dict.dz\n",
                index_path);
        st->skipped_files++;
        free(dict);
        free(index);
        return 0;
    }
    /* Several headwords may point at one entry: keep the first. One headword
     * may have several entries: number the later ones (NAME:word#2). */
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
            st->bad_lines++;
            free(text);
            continue;
        }
        mb_rdoc_t d = {id, line, text, index_path};
        st->docs++;
        stop = fn(arg, &d);
        free(text);
    }
    zhashx_destroy(&offsets);
    zhashx_destroy(&ids);
    free(dict);
    free(index);
    return stop;
}

static int s_read_text(const char *path, mb_reader_fn *fn, void *arg,
                       mb_reader_stats_t *st) {
    size_t len = 0;
    char *text = s_slurp(path, &len);
    if (!text || !s_valid_text(text, len)) {
        fprintf(stderr, "moebus: skipping %s: %s\n", path,
                text ? "not UTF-8 text" : strerror(errno));
        st->skipped_files++;
        free(text);
        return 0;
    }
    char abs[PATH_MAX];
    if (!realpath(path, abs)) snprintf(abs, sizeof abs, "%s", path);
    const char *slash = strrchr(abs, '/');
    mb_rdoc_t d = {abs, slash ? slash + 1 : abs, text, abs};
    st->docs++;
    int stop = len ? fn(arg, &d) : 0;
    free(text);
    return stop;
}

static int s_cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int s_read_path(const char *path, mb_reader_fn *fn, void *arg,
                       mb_reader_stats_t *st, int explicit) {
    struct stat sb;
    if (stat(path, &sb) != 0) {
        fprintf(stderr, "moebus: skipping %s: %s\n", path, strerror(errno));
        st->skipped_files++;
        return 0;
    }
    if (S_ISDIR(sb.st_mode)) {
        DIR *dir = opendir(path);
        if (!dir) {
            fprintf(stderr, "moebus: skipping %s: %s\n", path, strerror(errno));
            st->skipped_files++;
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
            if (!stop) stop = s_read_path(child, fn, arg, st, 0);
            free(names[i]);
        }
        free(names);
        return stop;
    }
    if (!S_ISREG(sb.st_mode)) return 0;
    if (s_ends(path, ".jsonl") || s_ends(path, ".jsonl.gz")) {
        st->files++;
        return s_read_jsonl(path, fn, arg, st);
    }
    if (s_ends(path, ".index")) {
        st->files++;
        return s_read_dictd(path, fn, arg, st);
    }
    if (s_ends(path, ".txt") || s_ends(path, ".md") || s_ends(path, ".markdown") ||
        s_ends(path, ".rst") || s_ends(path, ".text")) {
        st->files++;
        return s_read_text(path, fn, arg, st);
    }
    if (s_ends(path, ".dict") || s_ends(path, ".dict.dz")) return 0; /* via .index */
    if (explicit) {
        fprintf(stderr,
                "moebus: skipping %s: unsupported format (txt, md, jsonl[.gz], dictd "
                ".index)\n",
                path);
        st->skipped_files++;
    }
    return 0;
}

int mb_reader_run(char *const *paths, size_t n, mb_reader_fn *fn, void *arg,
                  mb_reader_stats_t *stats) {
    memset(stats, 0, sizeof *stats);
    for (size_t i = 0; i < n; i++)
        if (s_read_path(paths[i], fn, arg, stats, 1)) return 1;
    return 0;
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
