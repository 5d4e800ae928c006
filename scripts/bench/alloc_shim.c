/* alloc_shim.c: an LD_PRELOAD library that counts heap allocations in a moonwire process,
 * for scripts/bench/alloc.sh (issue 7, target 8). It forwards to glibc's allocator and
 * sorts every call by who made it: Lua's allocator (a return address inside liblua, i.e.
 * lauxlib's l_alloc: strings, tables, closures) or C (moonwire, libev, libc, wolfSSL..).
 *
 * A script opens a window by io.open("/__allocmark/start") and closes it with
 * io.open("/__allocmark/stop") (the fopen of such a path never touches the disk and
 * fails); at stop the shim prints one line to stderr:
 *   ALLOCS c_alloc=N c_free=N c_bytes=N lua_alloc=N lua_free=N lua_bytes=N
 * (and zlib_alloc=N: the C allocations made by moonwire's zlib hooks, a part of c_alloc;
 * ALLOC_ZLIB_RANGES="off:size,..." names those functions' code in the main executable,
 * alloc.sh takes it from nm; ALLOC_LUA_RANGES the same for moonwire's own Lua allocator,
 * mw_lua_alloc, whose calls are Lua's) followed by "ALLOCSITE count module+offset symbol" lines, the C call sites that
 * allocated most in the window (resolve with addr2line -e module offset). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void *__libc_memalign(size_t, size_t);

static uintptr_t lua_lo, lua_hi;   /* liblua's executable segment */
static int counting;
#define NZR 8
static uintptr_t zr_lo[NZR], zr_hi[NZR];   /* moonwire's zlib allocation hooks */
static int nzr;
static uintptr_t lr_lo[NZR], lr_hi[NZR];   /* moonwire's own Lua allocator (lalloc.c) */
static int nlr;
static unsigned long z_alloc_n;
static unsigned long c_alloc, c_free, c_bytes, lua_alloc, lua_free, lua_bytes;

#define NSITES 256
static struct { uintptr_t ra; unsigned long n; } sites[NSITES];

static int find_lua(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size; (void)data;
    if (!info->dlpi_name || !strstr(info->dlpi_name, "liblua")) return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
            lua_lo = info->dlpi_addr + ph->p_vaddr;
            lua_hi = lua_lo + ph->p_memsz;
            return 1;
        }
    }
    return 0;
}

static int find_main(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    if (info->dlpi_name && info->dlpi_name[0]) return 0;   /* the main program has no name */
    *(uintptr_t *)data = info->dlpi_addr;
    return 1;
}

/* "off:size,..." (hex, from nm -S) of functions in the main executable. */
static int parse_ranges(const char *r, uintptr_t base, uintptr_t *lo, uintptr_t *hi, int max)
{
    int n = 0;
    while (r && *r && n < max) {
        char *end;
        unsigned long off = strtoul(r, &end, 16);
        if (*end != ':') break;
        unsigned long len = strtoul(end + 1, &end, 16);
        lo[n] = base + off;
        hi[n++] = base + off + len;
        if (*end != ',') break;
        r = end + 1;
    }
    return n;
}

__attribute__((constructor)) static void init(void)
{
    dl_iterate_phdr(find_lua, NULL);
    uintptr_t base = 0;
    if (!dl_iterate_phdr(find_main, &base)) return;
    nzr = parse_ranges(getenv("ALLOC_ZLIB_RANGES"), base, zr_lo, zr_hi, NZR);
    nlr = parse_ranges(getenv("ALLOC_LUA_RANGES"), base, lr_lo, lr_hi, NZR);
}

static int in_ranges(uintptr_t ra, const uintptr_t *lo, const uintptr_t *hi, int n)
{
    for (int i = 0; i < n; i++)
        if (ra >= lo[i] && ra < hi[i]) return 1;
    return 0;
}

static int from_zlib_hooks(uintptr_t ra) { return in_ranges(ra, zr_lo, zr_hi, nzr); }

/* liblua (lauxlib's l_alloc), or the binary's own Lua allocator (lalloc.c) */
static int from_lua(void *ra)
{
    return ((uintptr_t)ra >= lua_lo && (uintptr_t)ra < lua_hi) || in_ranges((uintptr_t)ra, lr_lo, lr_hi, nlr);
}

static void note_alloc(void *ra, size_t n)
{
    if (!counting) return;
    if (from_lua(ra)) { lua_alloc++; lua_bytes += n; return; }
    c_alloc++;
    c_bytes += n;
    if (from_zlib_hooks((uintptr_t)ra)) z_alloc_n++;
    uintptr_t h = ((uintptr_t)ra >> 2) % NSITES;
    for (int i = 0; i < NSITES; i++, h = (h + 1) % NSITES) {
        if (sites[h].ra == (uintptr_t)ra) { sites[h].n++; return; }
        if (!sites[h].ra) { sites[h].ra = (uintptr_t)ra; sites[h].n = 1; return; }
    }
}

static void note_free(void *ra, void *p)
{
    if (!counting || !p) return;
    if (from_lua(ra)) lua_free++;
    else c_free++;
}

void *malloc(size_t n)
{
    note_alloc(__builtin_return_address(0), n);
    return __libc_malloc(n);
}

void *calloc(size_t a, size_t b)
{
    note_alloc(__builtin_return_address(0), a * b);
    return __libc_calloc(a, b);
}

void *realloc(void *p, size_t n)
{
    void *ra = __builtin_return_address(0);
    if (n == 0) note_free(ra, p);
    else note_alloc(ra, n);   /* growing or shrinking a block is a call to the allocator too */
    return __libc_realloc(p, n);
}

void free(void *p)
{
    note_free(__builtin_return_address(0), p);
    __libc_free(p);
}

void *memalign(size_t al, size_t n)
{
    note_alloc(__builtin_return_address(0), n);
    return __libc_memalign(al, n);
}

void *aligned_alloc(size_t al, size_t n)
{
    note_alloc(__builtin_return_address(0), n);
    return __libc_memalign(al, n);
}

int posix_memalign(void **out, size_t al, size_t n)
{
    note_alloc(__builtin_return_address(0), n);
    void *p = __libc_memalign(al, n);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

static void report(void)
{
    counting = 0;
    fprintf(stderr, "ALLOCS c_alloc=%lu c_free=%lu c_bytes=%lu lua_alloc=%lu lua_free=%lu lua_bytes=%lu zlib_alloc=%lu\n",
            c_alloc, c_free, c_bytes, lua_alloc, lua_free, lua_bytes, z_alloc_n);
    for (int k = 0; k < 8; k++) {
        int best = -1;
        for (int i = 0; i < NSITES; i++)
            if (sites[i].n && (best < 0 || sites[i].n > sites[best].n)) best = i;
        if (best < 0) break;
        Dl_info di;
        const char *mod = "?", *sym = "?";
        uintptr_t off = sites[best].ra;
        if (dladdr((void *)sites[best].ra, &di)) {
            mod = di.dli_fname ? di.dli_fname : "?";
            sym = di.dli_sname ? di.dli_sname : "?";
            off = sites[best].ra - (uintptr_t)di.dli_fbase;
        }
        fprintf(stderr, "ALLOCSITE %lu %s+0x%lx %s\n", sites[best].n, mod, (unsigned long)off, sym);
        sites[best].n = 0;
    }
}

static int mark(const char *path)
{
    if (strncmp(path, "/__allocmark/", 13) != 0) return 0;
    if (strcmp(path + 13, "start") == 0) {
        c_alloc = c_free = c_bytes = lua_alloc = lua_free = lua_bytes = z_alloc_n = 0;
        memset(sites, 0, sizeof sites);
        counting = 1;
    } else if (strcmp(path + 13, "stop") == 0) {
        report();
    }
    errno = ENOENT;
    return 1;
}

FILE *fopen(const char *path, const char *mode)
{
    static FILE *(*real)(const char *, const char *);
    if (mark(path)) return NULL;
    if (!real) real = (FILE * (*)(const char *, const char *)) dlsym(RTLD_NEXT, "fopen");
    return real(path, mode);
}

FILE *fopen64(const char *path, const char *mode)
{
    static FILE *(*real)(const char *, const char *);
    if (mark(path)) return NULL;
    if (!real) real = (FILE * (*)(const char *, const char *)) dlsym(RTLD_NEXT, "fopen64");
    return real(path, mode);
}
