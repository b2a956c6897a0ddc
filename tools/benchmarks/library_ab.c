/* library_ab.c — two to four builds of the library (variant files, e.g. libnativesoftmax_avx512.so
   of two commits) in one process: ns/element, median of interleaved rounds, of softmax, log_softmax
   and cross-entropy with its gradient on several shapes at T threads (environment variable T), with
   each build's time over the first's, and a bitwise comparison of their outputs. How the pool
   figures in CHANGELOG ("Changed (waking the workers)") were measured: run it once per load order
   and take the geometric mean of the ratios, since the load order itself biases a run. With
   SMOOTHING=x in the environment, cross-entropy runs with label_smoothing x (else the defaults).

     gcc -O2 -o library_ab tools/benchmarks/library_ab.c -ldl
     T=16 ./library_ab old/libnativesoftmax_avx512.so new/libnativesoftmax_avx512.so */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
typedef int32_t st_t;
typedef st_t (*sf)(int64_t,int64_t,const float*,int64_t,float*,int64_t);
typedef st_t (*cef)(int64_t,int64_t,const float*,int64_t,const int64_t*,const float*,const void*,float*,float*,int64_t);
typedef st_t (*setn)(int32_t);
/* nsm_cross_entropy_options, as the header declares it (version 2). */
typedef struct { uint32_t struct_size; int32_t reduction; int64_t ignore_index; double label_smoothing, grad_scale; const float* grad_output; } ce_options;
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+1e-9*t.tv_nsec;}
static int cmp(const void*a,const void*b){double x=*(double*)a,y=*(double*)b;return x<y?-1:x>y;}
#define ROUNDS 9
int main(int argc,char**argv){
  int T=getenv("T")?atoi(getenv("T")):1; int nl=argc-1;
  ce_options o={sizeof(ce_options),2,-100,getenv("SMOOTHING")?atof(getenv("SMOOTHING")):0.0,1.0,NULL};
  const void*opt=getenv("SMOOTHING")?&o:NULL;
  sf sm[4],ls[4]; cef ce[4]; if(nl<1||nl>4){puts("1 to 4 libraries");return 2;}
  for(int l=0;l<nl;l++){ void*h=dlopen(argv[1+l],RTLD_NOW|RTLD_LOCAL); if(!h){puts(dlerror());return 1;}
    sm[l]=(sf)dlsym(h,"nsm_softmax_f32"); ls[l]=(sf)dlsym(h,"nsm_log_softmax_f32"); ce[l]=(cef)dlsym(h,"nsm_cross_entropy_f32");
    ((setn)dlsym(h,"nsm_set_num_threads"))(T); }
  long shapes[][2]={{16,262144},{64,128256},{256,32000},{4096,1000},{1,1<<20},{1,65536},{65536,10},{256,1000},{64,1000}};
  int ns=sizeof shapes/sizeof shapes[0]; int bad=0;
  printf("T=%d  label_smoothing %g  ns/element, median of %d interleaved rounds; ratios = each later library / the first\n",T,o.label_smoothing,ROUNDS);
  for(int s=0;s<ns;s++){
    long R=shapes[s][0],C=shapes[s][1]; size_t n=R*C;
    float*x=malloc(n*4),*y[4],*g[4]; int64_t*t=malloc(R*8); float loss[4];
    for(int l=0;l<nl;l++){ y[l]=malloc(n*4); g[l]=malloc(n*4); memset(y[l],0,n*4); memset(g[l],0,n*4);}
    srand(1); for(size_t i=0;i<n;i++) x[i]=(rand()/(float)RAND_MAX)*20-10;
    for(long r=0;r<R;r++) t[r]=(r*7919)%C;
    int reps=(int)(8e6/(n+1000)); if(reps<3) reps=3;
    double tm[4][3][ROUNDS];
    for(int round=0;round<ROUNDS;round++) for(int l0=0;l0<nl;l0++){ int l=(l0+round)%nl;
      for(int op=0;op<3;op++){ double t0=now();
        for(int r=0;r<reps;r++) switch(op){
          case 0: sm[l](R,C,x,C,y[l],C); break;
          case 1: ls[l](R,C,x,C,y[l],C); break;
          case 2: ce[l](R,C,x,C,t,NULL,opt,&loss[l],g[l],C); break; }
        tm[l][op][round]=(now()-t0)/reps/n*1e9; } }
    const char*names[3]={"softmax","log_softmax","CE fwd+grad"};
    for(int op=0;op<3;op++){ printf("%6ldx%-7ld %-12s",R,C,names[op]); double m[4];
      for(int l=0;l<nl;l++){ qsort(tm[l][op],ROUNDS,8,cmp); m[l]=tm[l][op][ROUNDS/2]; printf("  %8.4f",m[l]); }
      for(int l=1;l<nl;l++) printf("   %.3f",m[l]/m[0]);
      printf("\n"); }
    for(int l=0;l<nl;l++) sm[l](R,C,x,C,y[l],C);
    for(int l=1;l<nl;l++){ if(memcmp(y[0],y[l],n*4)){printf("  softmax outputs DIFFER\n");bad=1;}
      if(memcmp(g[0],g[l],n*4)||memcmp(&loss[0],&loss[l],4)){printf("  CE outputs DIFFER\n");bad=1;} }
    for(int l=0;l<nl;l++){free(y[l]);free(g[l]);} free(x); free(t);
  }
  printf(bad?"BITS DIFFER\n":"outputs identical between the builds\n");
  return bad;
}
