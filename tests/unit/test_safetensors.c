/* common/safetensors: valid images of every dtype, exact f16/bf16 conversion
 * (against an independent formula, all 65536 codes), every malformed case
 * refused with a message, qr_st_load on real files, and a cross-check
 * against a file numpy writes at run time (skipped without python3/numpy). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "safetensors.h"

/* An image: 8-byte little-endian length, hdr, then dlen bytes of data. */
static uint8_t *s_image(const char *hdr, const void *data, size_t dlen, size_t *len)
{
    size_t hl = strlen(hdr);
    *len = 8 + hl + dlen;
    uint8_t *b = malloc(*len);
    assert_non_null(b);
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(b + 8, hdr, hl);
    if (dlen)
        memcpy(b + 8 + hl, data, dlen);
    return b;
}

static uint32_t s_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static void s_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void s_put32f(uint8_t *p, float f)
{
    uint32_t u = s_bits(f);
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(u >> (8 * i));
}

static void test_dtypes(void **state)
{
    (void)state;
    /* z: F32 [2,3] at 0..24; a: F16 [2] at 24..28; m: BF16 [1,2] at 28..32 */
    uint8_t d[32];
    for (int i = 0; i < 6; i++)
        s_put32f(d + 4 * i, (float)i - 2.5f);
    s_put16(d + 24, 0x3c00); /* 1.0 */
    s_put16(d + 26, 0xc100); /* -2.5 */
    s_put16(d + 28, 0x4049); /* bf16 3.140625 */
    s_put16(d + 30, 0xbf80); /* bf16 -1 */
    const char *h = "{\"__metadata__\":{\"format\":\"pt\"},"
                    "\"z\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
                    "\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[24,28]},"
                    "\"m\":{\"dtype\":\"BF16\",\"shape\":[1,2],\"data_offsets\":[28,32]}}";
    size_t len;
    uint8_t *img = s_image(h, d, sizeof d, &len);
    char err[256] = "";
    qr_st_file_t *f = qr_st_parse(img, len, err, sizeof err);
    memset(img, 0xa5, len); /* the object keeps nothing of the caller's buffer */
    free(img);
    assert_non_null(f);
    assert_int_equal(qr_st_count(f), 3);
    const char *order[] = {"a", "m", "z"};
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(qr_st_at(f, i)->name, order[i]);
    assert_null(qr_st_at(f, 3));

    const qr_st_tensor_t *z = qr_st_find(f, "z");
    assert_non_null(z);
    assert_int_equal(z->dtype, QR_ST_F32);
    assert_int_equal(z->ndims, 2);
    assert_int_equal(z->dims[0], 2);
    assert_int_equal(z->dims[1], 3);
    assert_int_equal(z->count, 6);
    for (int i = 0; i < 6; i++)
        assert_true(z->data[i] == (float)i - 2.5f);

    const qr_st_tensor_t *a = qr_st_find(f, "a");
    assert_int_equal(a->dtype, QR_ST_F16);
    assert_int_equal(a->count, 2);
    assert_true(a->data[0] == 1.0f && a->data[1] == -2.5f);

    const qr_st_tensor_t *m = qr_st_find(f, "m");
    assert_int_equal(m->dtype, QR_ST_BF16);
    assert_int_equal(m->ndims, 2);
    assert_int_equal(m->count, 2);
    assert_true(m->data[0] == 3.140625f && m->data[1] == -1.0f);

    assert_null(qr_st_find(f, "b"));
    assert_null(qr_st_find(f, "__metadata__"));
    assert_null(qr_st_find(f, NULL));
    qr_st_destroy(&f);
    assert_null(f);
}

static void test_scalar_empty_layout(void **state)
{
    (void)state;
    uint8_t d[16] = {0};
    s_put32f(d + 4, 42.0f);
    /* a scalar, empty tensors (one with huge other dims), a gap before the
     * scalar, an empty tensor at a busy offset, adjacent spans, trailing
     * bytes, and the space padding real writers add to the header */
    const char *h = "{\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[4,8]},"
                    "\"e\":{\"dtype\":\"F16\",\"shape\":[0,3],\"data_offsets\":[6,6]},"
                    "\"e2\":{\"dtype\":\"BF16\",\"shape\":[0,9223372036854775807,"
                    "9223372036854775807],\"data_offsets\":[6,6]},"
                    "\"n\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[8,12]},"
                    "\"empty_list\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[16,16]},"
                    "\"extra\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[12,16],\"x\":1}}"
                    "        ";
    size_t len;
    uint8_t *img = s_image(h, d, sizeof d, &len);
    char err[256] = "";
    qr_st_file_t *f = qr_st_parse(img, len, err, sizeof err);
    free(img);
    assert_non_null(f);
    assert_int_equal(qr_st_count(f), 6);
    const qr_st_tensor_t *s = qr_st_find(f, "s");
    assert_int_equal(s->ndims, 0);
    assert_int_equal(s->count, 1);
    assert_true(s->data[0] == 42.0f);
    const qr_st_tensor_t *e = qr_st_find(f, "e");
    assert_int_equal(e->count, 0);
    assert_int_equal(e->ndims, 2);
    assert_non_null(e->data);
    assert_int_equal(qr_st_find(f, "e2")->count, 0);
    assert_int_equal(qr_st_find(f, "empty_list")->count, 0);
    assert_int_equal(qr_st_find(f, "n")->count, 2);
    qr_st_destroy(&f);

    /* the smallest valid file: an empty object */
    img = s_image("{}", NULL, 0, &len);
    f = qr_st_parse(img, len, err, sizeof err);
    free(img);
    assert_non_null(f);
    assert_int_equal(qr_st_count(f), 0);
    assert_null(qr_st_at(f, 0));
    assert_null(qr_st_find(f, "x"));
    qr_st_destroy(&f);
}

/* The value an f16 code stands for, from the definition (not bit tricks). */
static float s_f16_ref(uint16_t h)
{
    int sign = h >> 15, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    double v;
    if (exp == 0)
        v = ldexp(mant, -24);
    else if (exp == 31)
        v = mant ? NAN : INFINITY;
    else
        v = ldexp(1024 + mant, exp - 25);
    return (float)(sign ? -v : v);
}

/* The value a bf16 code stands for: sign, 8-bit exponent, 7-bit mantissa. */
static float s_bf16_ref(uint16_t h)
{
    int sign = h >> 15, exp = (h >> 7) & 0xff, mant = h & 0x7f;
    double v;
    if (exp == 0)
        v = ldexp(mant, -133);
    else if (exp == 255)
        v = mant ? NAN : INFINITY;
    else
        v = ldexp(128 + mant, exp - 134);
    return (float)(sign ? -v : v);
}

static void test_conversions(void **state)
{
    (void)state;
    /* named edge cases */
    assert_true(qr_st_f16_to_f32(0x0001) == ldexpf(1, -24));    /* smallest subnormal */
    assert_true(qr_st_f16_to_f32(0x03ff) == ldexpf(1023, -24)); /* largest subnormal */
    assert_true(qr_st_f16_to_f32(0x0400) == ldexpf(1, -14));    /* smallest normal */
    assert_true(qr_st_f16_to_f32(0x7bff) == 65504.0f);          /* max */
    assert_true(qr_st_f16_to_f32(0xfbff) == -65504.0f);
    assert_true(qr_st_f16_to_f32(0x3c00) == 1.0f);
    assert_true(qr_st_f16_to_f32(0x3555) == 0.333251953125f);
    assert_true(isinf(qr_st_f16_to_f32(0x7c00)) && qr_st_f16_to_f32(0x7c00) > 0);
    assert_true(isinf(qr_st_f16_to_f32(0xfc00)) && qr_st_f16_to_f32(0xfc00) < 0);
    assert_true(isnan(qr_st_f16_to_f32(0x7e00)));
    assert_true(isnan(qr_st_f16_to_f32(0x7c01))); /* signalling pattern stays NaN */
    assert_true(isnan(qr_st_f16_to_f32(0xfe00)));
    assert_int_equal(s_bits(qr_st_f16_to_f32(0x8000)), 0x80000000u); /* -0 */
    assert_int_equal(s_bits(qr_st_f16_to_f32(0x0000)), 0);
    assert_int_equal(s_bits(qr_st_f16_to_f32(0x8001)), s_bits(-ldexpf(1, -24)));

    assert_true(qr_st_bf16_to_f32(0x3f80) == 1.0f);
    assert_int_equal(s_bits(qr_st_bf16_to_f32(0x7f7f)), 0x7f7f0000u); /* max */
    assert_true(qr_st_bf16_to_f32(0x7f7f) == 0x1.fep127f);
    assert_true(qr_st_bf16_to_f32(0x0001) == ldexpf(1, -133)); /* smallest subnormal */
    assert_true(qr_st_bf16_to_f32(0x0080) == ldexpf(1, -126)); /* smallest normal */
    assert_true(isinf(qr_st_bf16_to_f32(0x7f80)) && qr_st_bf16_to_f32(0x7f80) > 0);
    assert_true(isinf(qr_st_bf16_to_f32(0xff80)) && qr_st_bf16_to_f32(0xff80) < 0);
    assert_true(isnan(qr_st_bf16_to_f32(0x7fc0)));
    assert_true(isnan(qr_st_bf16_to_f32(0x7f81)));
    assert_int_equal(s_bits(qr_st_bf16_to_f32(0x8000)), 0x80000000u);

    /* every code against the definition; NaNs keep sign and stay NaN */
    for (uint32_t h = 0; h <= 0xffff; h++) {
        float got = qr_st_f16_to_f32((uint16_t)h), want = s_f16_ref((uint16_t)h);
        if (isnan(want))
            assert_true(isnan(got) && !signbit(got) == !(h & 0x8000));
        else
            assert_int_equal(s_bits(got), s_bits(want));
        got = qr_st_bf16_to_f32((uint16_t)h);
        want = s_bf16_ref((uint16_t)h);
        if (isnan(want))
            assert_true(isnan(got));
        else
            assert_int_equal(s_bits(got), s_bits(want));
    }
}

/* Expects the image to be refused with a message containing each of the
 * NUL-separated fragments in want. */
static void s_refused(const uint8_t *img, size_t len, const char *want, int line)
{
    char err[512];
    memset(err, 0, sizeof err);
    qr_st_file_t *f = qr_st_parse(img, len, err, sizeof err);
    if (f) {
        qr_st_destroy(&f);
        fail_msg("line %d: accepted, wanted \"%s\"", line, want);
    }
    if (!strstr(err, want))
        fail_msg("line %d: message \"%s\" lacks \"%s\"", line, err, want);
    /* no err buffer at all is fine too */
    assert_null(qr_st_parse(img, len, NULL, 0));
    char tiny[4];
    assert_null(qr_st_parse(img, len, tiny, sizeof tiny));
    assert_true(strlen(tiny) < sizeof tiny);
}

static void s_bad_hdr(const char *hdr, size_t dlen, const char *want, int line)
{
    uint8_t data[64] = {0};
    assert_true(dlen <= sizeof data);
    size_t len;
    uint8_t *img = s_image(hdr, data, dlen, &len);
    s_refused(img, len, want, line);
    free(img);
}

#define BAD(hdr, dlen, want) s_bad_hdr(hdr, dlen, want, __LINE__)
#define T(body) "{\"w\":{" body "}}"

static void test_malformed(void **state)
{
    (void)state;
    uint8_t raw[16] = {0};
    /* framing */
    s_refused(raw, 0, "truncated", __LINE__);
    s_refused(NULL, 0, "truncated", __LINE__);
    s_refused(raw, 7, "truncated", __LINE__);
    raw[0] = 9; /* 9 header bytes, 8 present */
    s_refused(raw, 16, "runs past", __LINE__);
    memset(raw, 0xff, 8); /* 2^64-1: no wrap-around */
    s_refused(raw, 16, "runs past", __LINE__);
    memset(raw, 0, 8);
    raw[7] = 0x80;
    s_refused(raw, 16, "runs past", __LINE__);

    /* the JSON itself */
    BAD("", 0, "not valid JSON");
    BAD("{abc", 0, "not valid JSON");
    BAD("{} x", 0, "not valid JSON");
    BAD("[]", 0, "not a JSON object");
    BAD("42", 0, "not valid JSON"); /* jansson wants an object or array at top */
    BAD("{\"a\\u0000b\":{}}", 0, "not valid JSON");
    BAD("{\"\xff\xfe\":{}}", 0, "not valid JSON"); /* not UTF-8 */
    /* a duplicate name would make two tensors of one name: refused */
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
        "\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[4,8]}}",
        8, "duplicate");

    /* entries */
    BAD("{\"w\":3}", 0, "'w': entry is not a JSON object");
    BAD(T("\"shape\":[],\"data_offsets\":[0,4]"), 4, "'w': no \"dtype\"");
    BAD(T("\"dtype\":5,\"shape\":[],\"data_offsets\":[0,4]"), 4, "'w': \"dtype\" is not a string");
    BAD(T("\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]"), 8,
        "tensor 'w': dtype \"I64\" is not supported");
    BAD(T("\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]"), 4, "dtype \"f32\"");
    BAD(T("\"dtype\":\"F32\",\"data_offsets\":[0,4]"), 4, "'w': \"shape\" is missing");
    BAD(T("\"dtype\":\"F32\",\"shape\":4,\"data_offsets\":[0,4]"), 4, "\"shape\" is not an array");
    BAD(T("\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]"), 4,
        "\"shape\"[0] is not a non-negative integer");
    BAD(T("\"dtype\":\"F32\",\"shape\":[1,1.0],\"data_offsets\":[0,4]"), 4, "\"shape\"[1]");
    BAD(T("\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]"), 4, "\"shape\"[0]");
    BAD(T("\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]"), 4,
        "9 dimensions");
    BAD(T("\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,2],\"data_offsets\":[0,4]"), 4,
        "element count overflows");
    BAD(T("\"dtype\":\"F32\",\"shape\":[4611686018427387904,2],\"data_offsets\":[0,4]"), 4,
        "byte size of \"shape\" overflows");
    BAD(T("\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,4]"), 4,
        "not valid JSON"); /* jansson refuses integers past int64 */
    BAD(T("\"dtype\":\"F32\",\"shape\":[1]"), 4, "\"data_offsets\" is missing");
    BAD(T("\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]"), 4, "\"data_offsets\" is not");
    BAD(T("\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]"), 8,
        "\"data_offsets\" is not");
    BAD(T("\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]"), 4, "\"data_offsets\" is not");
    BAD(T("\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":{}"), 4, "\"data_offsets\" is not");
    BAD(T("\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,0]"), 4, "out of range");
    BAD(T("\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]"), 4,
        "'w': \"data_offsets\" [4, 8] out of range (data section is 4 bytes)");
    BAD(T("\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,18446744073709551615]"), 4,
        "not valid JSON");
    BAD(T("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]"), 8,
        "span 4 bytes, but F32 of 2 elements needs 8");
    BAD(T("\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,8]"), 8, "needs 4");
    BAD(T("\"dtype\":\"F16\",\"shape\":[0],\"data_offsets\":[0,2]"), 8, "needs 0");

    /* overlaps: partial, containment, identical spans */
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
        "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
        12, "tensors 'a' and 'b' overlap");
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
        "\"b\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[4,8]}}",
        16, "overlap");
    BAD("{\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]},"
        "\"c\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
        "\"a\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[8,12]}}",
        12, "overlap");
}

static char s_dir[] = "/tmp/qr-test-st-XXXXXX";

static void s_write(const char *path, const void *b, size_t n)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(b, 1, n, fp), n);
    assert_int_equal(fclose(fp), 0);
}

static void test_load(void **state)
{
    (void)state;
    char path[256], err[512];
    assert_non_null(mkdtemp(s_dir));

    snprintf(path, sizeof path, "%s/missing.safetensors", s_dir);
    assert_null(qr_st_load(path, err, sizeof err));
    assert_non_null(strstr(err, "missing.safetensors"));
    assert_null(qr_st_load(s_dir, err, sizeof err));
    assert_non_null(strstr(err, "not a regular file"));

    snprintf(path, sizeof path, "%s/empty.safetensors", s_dir);
    s_write(path, "", 0);
    assert_null(qr_st_load(path, err, sizeof err));
    assert_non_null(strstr(err, "empty"));

    uint8_t d[8];
    s_put32f(d, -1.5f);
    s_put16(d + 4, 0x7c00);
    s_put16(d + 6, 0x0001);
    size_t len;
    uint8_t *img = s_image("{\"b\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[4,8]},"
                           "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
                           d, sizeof d, &len);
    snprintf(path, sizeof path, "%s/ok.safetensors", s_dir);
    s_write(path, img, len);
    qr_st_file_t *f = qr_st_load(path, err, sizeof err);
    assert_non_null(f);
    assert_int_equal(qr_st_count(f), 2);
    assert_true(qr_st_find(f, "a")->data[0] == -1.5f);
    assert_true(isinf(qr_st_find(f, "b")->data[0]));
    assert_true(qr_st_find(f, "b")->data[1] == ldexpf(1, -24));
    qr_st_destroy(&f);
    unlink(path);

    /* a truncated file names the file and the problem */
    snprintf(path, sizeof path, "%s/short.safetensors", s_dir);
    s_write(path, img, len - 1);
    assert_null(qr_st_load(path, err, sizeof err));
    assert_non_null(strstr(err, "short.safetensors"));
    assert_non_null(strstr(err, "out of range"));
    free(img);
    unlink(path);
    snprintf(path, sizeof path, "%s/empty.safetensors", s_dir);
    unlink(path);
    rmdir(s_dir);
}

/* numpy writes the file (header by json, length by struct, data by
 * tobytes) plus, per tensor, the fp32 values numpy itself converts to. */
static const char s_py[] =
    "import json, struct, sys\n"
    "import numpy as np\n"
    "d = sys.argv[1]\n"
    "rng = np.random.default_rng(7)\n"
    "f32 = np.concatenate([rng.standard_normal(61).astype(np.float32),\n"
    "      np.array([0.0, -0.0, np.inf, -np.inf, 1e-45, 3.4028235e38], dtype=np.float32)])\n"
    "f32 = f32.reshape(67, 1)\n"
    "f16 = np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.float16).reshape(256, 16, "
    "16)\n"
    "bf = (rng.standard_normal(300).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)\n"
    "bf = np.concatenate([bf, np.array([0x7f80, 0xff80, 0x0001, 0x8000, 0x7f7f], np.uint16)])\n"
    "bf = bf.reshape(5, 61)\n"
    "ts = [('w.f32', 'F32', f32), ('v.f16', 'F16', f16), ('b.bf16', 'BF16', bf),\n"
    "      ('s', 'F32', np.array(2.5, dtype=np.float32))]\n"
    "hdr, blob, ref = {'__metadata__': {'format': 'np'}}, b'', {}\n"
    "for name, dt, a in ts:\n"
    "    raw = a.astype(a.dtype.newbyteorder('<')).tobytes()\n"
    "    hdr[name] = {'dtype': dt, 'shape': list(a.shape), 'data_offsets': [len(blob), len(blob) + "
    "len(raw)]}\n"
    "    blob += raw\n"
    "    if dt == 'BF16':\n"
    "        r = (a.astype(np.uint32) << 16).view(np.float32)\n"
    "    else:\n"
    "        r = a.astype(np.float32)\n"
    "    open(d + '/' + name + '.ref', 'wb').write(r.astype('<f4').tobytes())\n"
    "h = json.dumps(hdr).encode()\n"
    "h += b' ' * (-len(h) % 8)\n"
    "open(d + '/np.safetensors', 'wb').write(struct.pack('<Q', len(h)) + h + blob)\n";

static void test_numpy(void **state)
{
    (void)state;
    /* the first python3 that has numpy: $QUARRY_PYTHON, the one on PATH (may
     * be a pyenv without it), then Debian's, where python3-numpy installs */
    const char *cands[] = {getenv("QUARRY_PYTHON"), "python3", "/usr/bin/python3"};
    const char *python = NULL;
    char cmd[512], path[512], err[512] = "";
    for (size_t i = 0; i < sizeof cands / sizeof *cands && !python; i++) {
        if (!cands[i] || !*cands[i] || strchr(cands[i], '\''))
            continue;
        snprintf(cmd, sizeof cmd, "'%s' -c 'import numpy' >/dev/null 2>&1", cands[i]);
        if (system(cmd) == 0)
            python = cands[i];
    }
    if (!python) {
        printf("# no python3 with numpy found; numpy cross-check skipped\n");
        skip();
    }
    char dir[] = "/tmp/qr-test-st-np-XXXXXX";
    assert_non_null(mkdtemp(dir));
    snprintf(cmd, sizeof cmd, "'%s' - '%s'", python, dir);
    FILE *py = popen(cmd, "w");
    assert_non_null(py);
    assert_int_equal(fwrite(s_py, 1, sizeof s_py - 1, py), sizeof s_py - 1);
    assert_int_equal(pclose(py), 0);

    snprintf(path, sizeof path, "%s/np.safetensors", dir);
    qr_st_file_t *f = qr_st_load(path, err, sizeof err);
    if (!f)
        fail_msg("loading numpy's file: %s", err);
    assert_int_equal(qr_st_count(f), 4);
    assert_string_equal(qr_st_at(f, 0)->name, "b.bf16");
    assert_string_equal(qr_st_at(f, 3)->name, "w.f32");
    const qr_st_tensor_t *v = qr_st_find(f, "v.f16");
    assert_int_equal(v->ndims, 3);
    assert_int_equal(v->dims[0], 256);
    assert_int_equal(v->dims[2], 16);
    assert_int_equal(v->count, 65536);
    const qr_st_tensor_t *s = qr_st_find(f, "s");
    assert_int_equal(s->ndims, 0);
    assert_true(s->data[0] == 2.5f);

    const char *names[] = {"w.f32", "v.f16", "b.bf16", "s"};
    for (int k = 0; k < 4; k++) {
        const qr_st_tensor_t *t = qr_st_find(f, names[k]);
        assert_non_null(t);
        snprintf(path, sizeof path, "%s/%s.ref", dir, names[k]);
        FILE *fp = fopen(path, "rb");
        assert_non_null(fp);
        float *ref = malloc(t->count * sizeof *ref);
        assert_non_null(ref);
        assert_int_equal(fread(ref, sizeof *ref, t->count, fp), t->count);
        assert_int_equal(fgetc(fp), EOF);
        fclose(fp);
        unlink(path);
        for (uint64_t i = 0; i < t->count; i++) {
            if (isnan(ref[i]))
                assert_true(isnan(t->data[i]));
            else if (s_bits(ref[i]) != s_bits(t->data[i]))
                fail_msg("%s[%llu]: numpy %a, ours %a", names[k], (unsigned long long)i,
                         (double)ref[i], (double)t->data[i]);
        }
        free(ref);
    }
    qr_st_destroy(&f);
    snprintf(path, sizeof path, "%s/np.safetensors", dir);
    unlink(path);
    rmdir(dir);
}

static void test_null(void **state)
{
    (void)state;
    qr_st_destroy(NULL);
    qr_st_file_t *f = NULL;
    qr_st_destroy(&f);
    qr_st_destroy(&f);
    assert_int_equal(qr_st_count(NULL), 0);
    assert_null(qr_st_at(NULL, 0));
    assert_null(qr_st_find(NULL, "a"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dtypes),      cmocka_unit_test(test_scalar_empty_layout),
        cmocka_unit_test(test_conversions), cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_load),        cmocka_unit_test(test_numpy),
        cmocka_unit_test(test_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
