/* arith: integer and floating-point results (no syscalls beyond printf's). */
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>

int main(void)
{
    volatile int64_t a = -7, b = 3;
    volatile uint64_t big = UINT64_MAX;
    volatile uint32_t u32 = 0xdeadbeefu;
    volatile double x = 2.0, y = 10.0, z = -0.5;
    volatile float f = 1.0f / 3.0f;
    uint64_t h = 1469598103934665603ULL; /* FNV-1a over 0..99999 */

    printf("div %" PRId64 " mod %" PRId64 "\n", a / b, a % b);
    printf("mul %" PRId64 "\n", (int64_t)(a * 1000003 * b));
    printf("wrap %" PRIu64 "\n", big + 2);
    printf("shift %" PRIx64 " %" PRIx32 "\n", (uint64_t)u32 << 20, u32 >> 7);
    printf("popcount %d clz %d ctz %d\n", __builtin_popcountll(big / 3),
           __builtin_clzll((uint64_t)u32), __builtin_ctz(u32 & 0xff0u));
    for (int i = 0; i < 100000; i++) {
        h ^= (uint64_t)i;
        h *= 1099511628211ULL;
    }
    printf("fnv %016" PRIx64 "\n", h);
    printf("sqrt %.12f\n", sqrt(x));
    printf("pow %.6e\n", pow(y, 15.5));
    printf("exp %.10f log %.10f\n", exp(x), log(y));
    printf("sin %.10f cos %.10f\n", sin(x), cos(x));
    printf("floor %.1f ceil %.1f round %.1f\n", floor(z), ceil(z), round(z));
    printf("float %.9g\n", (double)f);
    printf("div0 %f %f nan %d\n", x / 0.0, -x / 0.0, isnan(sqrt(z)));
    printf("fmt %g %g %g\n", 1e300 * 10, 123456789.0, 0.0001234);
    return 0;
}
