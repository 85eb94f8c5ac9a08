/*  zperd - placeholder until the broker lands; replaced by src/manager's daemon entry. */
#include <stdio.h>
int main (void) { fprintf (stderr, "zperd: broker not built yet\n"); return 1; }
