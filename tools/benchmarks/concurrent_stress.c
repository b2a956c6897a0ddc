/* concurrent_stress.c — a stress run of the worker pool: CALLERS threads call softmax, log_softmax
   and cross-entropy on shapes that split into chunks or blocks, while the main thread keeps
   changing the thread count in 1..MAX_THREADS; every output must equal, bit for bit, the one-thread
   result computed first. Ends after SECONDS; exits 1 on the first difference. It found the race
   in CHANGELOG's "Fixed (threads)".

     gcc -O2 -pthread -o concurrent_stress tools/benchmarks/concurrent_stress.c -ldl
     ./concurrent_stress build/lib/libnativesoftmax_avx2.so CALLERS MAX_THREADS SECONDS */
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
typedef int32_t (*sf)(int64_t,int64_t,const float*,int64_t,float*,int64_t);
typedef int32_t (*cef)(int64_t,int64_t,const float*,int64_t,const int64_t*,const float*,const void*,float*,float*,int64_t);
typedef int32_t (*setn)(int32_t);
static sf sm, ls; static cef ce; static setn set_threads;
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+1e-9*t.tv_nsec;}
static long shapes[][2]={{1,65536},{1,300000},{8,40000},{700,1000},{3000,37},{2,8192}};
#define NS 6
static float *x[NS], *ref[NS][3], refloss[NS]; static int64_t *tg[NS];
static double deadline; static volatile int failed; static long calls;
static void run(int s,int op,float*out,float*loss){ long R=shapes[s][0],C=shapes[s][1];
  if(op==0) sm(R,C,x[s],C,out,C); else if(op==1) ls(R,C,x[s],C,out,C); else ce(R,C,x[s],C,tg[s],NULL,NULL,loss,out,C); }
static void* caller(void*arg){ long id=(long)arg; unsigned seed=id*7+1; size_t maxn=0;
  for(int s=0;s<NS;s++) if((size_t)(shapes[s][0]*shapes[s][1])>maxn) maxn=shapes[s][0]*shapes[s][1];
  float*out=malloc(maxn*4); long n=0;
  while(now()<deadline && !failed){ int s=rand_r(&seed)%NS, op=rand_r(&seed)%3; float loss=0;
    run(s,op,out,&loss); n++;
    if(memcmp(out,ref[s][op],shapes[s][0]*shapes[s][1]*4) || (op==2 && memcmp(&loss,&refloss[s],4))){
      printf("FAIL: caller %ld shape %ldx%ld op %d differs from one thread\n",id,shapes[s][0],shapes[s][1],op); failed=1; } }
  __sync_fetch_and_add(&calls,n); free(out); return NULL; }
int main(int argc,char**argv){
  void*h=dlopen(argv[1],RTLD_NOW); if(!h){puts(dlerror());return 1;}
  sm=(sf)dlsym(h,"nsm_softmax_f32"); ls=(sf)dlsym(h,"nsm_log_softmax_f32"); ce=(cef)dlsym(h,"nsm_cross_entropy_f32"); set_threads=(setn)dlsym(h,"nsm_set_num_threads");
  int callers=atoi(argv[2]), maxT=atoi(argv[3]); double secs=atof(argv[4]);
  srand(3); set_threads(1);
  for(int s=0;s<NS;s++){ size_t n=shapes[s][0]*shapes[s][1]; x[s]=malloc(n*4); tg[s]=malloc(shapes[s][0]*8);
    for(size_t i=0;i<n;i++) x[s][i]=(rand()/(float)RAND_MAX)*30-15;
    for(long r=0;r<shapes[s][0];r++) tg[s][r]=rand()%shapes[s][1];
    for(int op=0;op<3;op++){ ref[s][op]=malloc(n*4); run(s,op,ref[s][op],&refloss[s]); } }
  deadline=now()+secs; pthread_t th[64];
  for(long i=0;i<callers;i++) pthread_create(&th[i],NULL,caller,(void*)i);
  unsigned seed=9; while(now()<deadline && !failed){ set_threads(1+rand_r(&seed)%maxT); struct timespec d={0,200000}; nanosleep(&d,NULL); }
  for(int i=0;i<callers;i++) pthread_join(th[i],NULL);
  printf("stress: %ld calls from %d callers, thread counts 1..%d: %s\n",calls,callers,maxT,failed?"FAILED":"all bitwise equal to one thread");
  return failed; }
