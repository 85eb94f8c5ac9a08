/*  =========================================================================
    zper_bench_proc - what the benchmarks read about another process

    The one thing to know: CPU time comes from /proc/PID/stat in clock
    ticks (10 ms here), so a figure taken over a short scenario is coarse;
    the benchmarks divide it by the messages of the whole scenario.
    ========================================================================= */

#ifndef ZPER_BENCH_PROC_H_INCLUDED
#define ZPER_BENCH_PROC_H_INCLUDED

#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

//  User + system CPU seconds of process pid so far, or -1 if it is gone.
static inline double
zper_bench_process_cpu (pid_t pid)
{
    char path [64];
    snprintf (path, sizeof path, "/proc/%d/stat", (int) pid);
    FILE *file = fopen (path, "r");
    if (!file)
        return -1;
    char line [1024];
    double cpu = -1;
    if (fgets (line, sizeof line, file)) {
        //  Fields after the command name, which may hold spaces: skip to ')'
        char *cursor = strrchr (line, ')');
        unsigned long utime = 0, stime = 0;
        if (cursor && sscanf (cursor + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
                              &utime, &stime) == 2)
            cpu = (double) (utime + stime) / (double) sysconf (_SC_CLK_TCK);
    }
    fclose (file);
    return cpu;
}

#endif
