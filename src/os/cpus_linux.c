/*
 * cpus_linux.c - how many Ps to run.
 *
 * GORC_MAXPROCS wins when set. Otherwise the count is what this process may really use: the
 * CPUs in its affinity mask, further capped by a cgroup v2 CPU quota (cpu.max "quota period",
 * rounded up). Go 1.19 ignores quotas and so runs more threads than a container may schedule,
 * which shows up as throttling; gorc does not.
 */
#include "runtime/runtime.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int affinity_cpus(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0)
            return n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* The cgroup v2 quota in CPUs (rounded up), or 0 for none. */
static int cgroup_cpus(void)
{
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (f == NULL)
        return 0;
    char line[4096], path[4200] = "";
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "0::", 3) == 0) {
            line[strcspn(line, "\n")] = 0;
            snprintf(path, sizeof path, "/sys/fs/cgroup%s/cpu.max", line + 3);
            break;
        }
    }
    fclose(f);
    if (path[0] == 0)
        return 0;
    f = fopen(path, "r");
    if (f == NULL)
        return 0;
    char quota[64] = "";
    long long period = 0;
    int got = fscanf(f, "%63s %lld", quota, &period);
    fclose(f);
    if (got != 2 || strcmp(quota, "max") == 0 || period <= 0)
        return 0;
    long long q = atoll(quota);
    if (q <= 0)
        return 0;
    return (int)((q + period - 1) / period);
}

int gorc__ncpu(void)
{
    const char *env = getenv("GORC_MAXPROCS");
    if (env && *env) {
        int n = atoi(env);
        if (n > 0)
            return n > 1024 ? 1024 : n;
    }
    int n = affinity_cpus();
    int q = cgroup_cpus();
    if (q > 0 && q < n)
        n = q;
    return n;
}
