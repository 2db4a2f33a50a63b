// The one file that talks to native code. It finds a CBLAS library (OpenBLAS, BLIS, MKL, Apple
// Accelerate, or whatever TUNEKIT_BLAS names), binds cblas_sgemm through koffi, and says once which
// library is in use. Where none loads, a pure-TypeScript kernel gives the same results, slowly.
// All matrices are row-major float32; `Float32Array.subarray` views are passed without copying.

import { createRequire } from 'node:module';
import * as os from 'node:os';
import { tsSgemm } from './gemm-ts.js';

export interface Gemm {
  /** Library name, or 'typescript' for the fallback kernel. */
  readonly name: string;
  /**
   * C(M,N) = alpha * op(A)(M,K) * op(B)(K,N) + beta * C, row-major, op = transpose when the flag is set.
   * lda/ldb/ldc are row strides of the matrices as stored.
   */
  sgemm(
    transA: boolean, transB: boolean, M: number, N: number, K: number,
    alpha: number, A: Float32Array, lda: number, B: Float32Array, ldb: number,
    beta: number, C: Float32Array, ldc: number,
  ): void;
  /** A stored (M,N) row-major: y(M) = alpha*A*x(N) + beta*y, or transposed y(N) = alpha*A^T*x(M) + beta*y. */
  sgemv(transA: boolean, M: number, N: number, alpha: number, A: Float32Array, lda: number, x: Float32Array, beta: number, y: Float32Array): void;
  setThreads(n: number): void;
}

/** Floating-point operations issued through the native GEMM/GEMV so far (benchmarks read it). */
export const gemmCounter = { flops: 0 };

const CblasRowMajor = 101;
const CblasNoTrans = 111;
const CblasTrans = 112;

/**
 * Native code trusts the dimensions it is given; a view too short for them would be read or written
 * past its end. This check turns such a bug into an exception instead of memory corruption.
 */
function checkMatrix(name: string, a: Float32Array, rows: number, cols: number, ld: number): void {
  if (rows > 0 && cols > 0 && ((rows - 1) * ld + cols > a.length || cols > ld)) {
    throw new Error(`internal: BLAS argument ${name} needs ${(rows - 1) * ld + cols} floats (${rows}x${cols}, stride ${ld}) but has ${a.length}`);
  }
}

function candidateLibraries(): string[] {
  const fromEnv = process.env.TUNEKIT_BLAS;
  if (fromEnv) return [fromEnv];
  if (os.platform() === 'darwin') {
    return ['/System/Library/Frameworks/Accelerate.framework/Accelerate', 'libopenblas.dylib', '/opt/homebrew/opt/openblas/lib/libopenblas.dylib'];
  }
  if (os.platform() === 'win32') return ['libopenblas.dll', 'openblas.dll', 'mkl_rt.2.dll'];
  return [
    'libopenblas.so.0', 'libopenblas.so', 'libopenblasp.so.0',
    'libblis.so.4', 'libblis.so',
    'libmkl_rt.so.2', 'libmkl_rt.so',
    'libcblas.so.3', 'libblas.so.3',
  ];
}

function loadNative(): Gemm | { error: string } {
  if (process.env.TUNEKIT_BLAS === 'none') return { error: 'TUNEKIT_BLAS=none' };
  let koffi: typeof import('koffi');
  try {
    koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
  } catch (err) {
    return { error: `koffi could not be loaded (${(err as Error).message})` };
  }
  // OpenBLAS threads busy-wait ~2^28 cycles after each call by default, which starves the kernel
  // pool's workers between matrix products; 2^4 makes them sleep almost at once. Read at load time.
  process.env.OPENBLAS_THREAD_TIMEOUT ??= '4';
  const errors: string[] = [];
  for (const libName of candidateLibraries()) {
    let lib: ReturnType<typeof koffi.load>;
    try {
      lib = koffi.load(libName);
    } catch {
      errors.push(libName);
      continue;
    }
    let fn: (...args: unknown[]) => void;
    try {
      fn = lib.func('void cblas_sgemm(int, int, int, int, int, int, float, const float *, int, const float *, int, float, _Inout_ float *, int)') as (...args: unknown[]) => void;
    } catch {
      errors.push(`${libName} (no cblas_sgemm)`);
      continue;
    }
    let gemv: ((...args: unknown[]) => void) | undefined;
    try {
      gemv = lib.func('void cblas_sgemv(int, int, int, int, float, const float *, int, const float *, int, float, _Inout_ float *, int)') as (...args: unknown[]) => void;
    } catch {
      gemv = undefined;
    }
    let setThreads: (n: number) => void = () => {};
    for (const sym of ['openblas_set_num_threads', 'bli_thread_set_num_threads', 'MKL_Set_Num_Threads']) {
      try {
        const f = lib.func(`void ${sym}(int)`) as (n: number) => void;
        setThreads = (n) => f(n);
        break;
      } catch {
        /* symbol absent in this library */
      }
    }
    return {
      name: libName,
      sgemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc) {
        if (M === 0 || N === 0) return;
        checkMatrix('A', A, transA ? K : M, transA ? M : K, lda);
        checkMatrix('B', B, transB ? N : K, transB ? K : N, ldb);
        checkMatrix('C', C, M, N, ldc);
        gemmCounter.flops += 2 * M * N * K;
        fn(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
          M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
      },
      sgemv(transA, M, N, alpha, A, lda, x, beta, y) {
        checkMatrix('A', A, M, N, lda);
        checkMatrix('x', x, 1, transA ? M : N, transA ? M : N);
        checkMatrix('y', y, 1, transA ? N : M, transA ? N : M);
        gemmCounter.flops += 2 * M * N;
        if (gemv) gemv(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, M, N, alpha, A, lda, x, 1, beta, y, 1);
        else if (transA) fn(CblasRowMajor, CblasNoTrans, CblasNoTrans, 1, N, M, alpha, x, M, A, lda, beta, y, N);
        else fn(CblasRowMajor, CblasNoTrans, CblasTrans, 1, M, N, alpha, x, N, A, lda, beta, y, M);
      },
      setThreads,
    };
  }
  return { error: `no BLAS library found (tried ${errors.join(', ')}); set TUNEKIT_BLAS=/path/to/libopenblas.so` };
}

export const typescriptGemm: Gemm = {
  name: 'typescript',
  sgemm: tsSgemm,
  sgemv: (transA, M, N, alpha, A, lda, x, beta, y) =>
    transA ? tsSgemm(false, false, 1, N, M, alpha, x, M, A, lda, beta, y, N) : tsSgemm(false, true, 1, M, N, alpha, x, N, A, lda, beta, y, M),
  setThreads() {},
};

let active: Gemm | undefined;
let announced = false;
let announce: (message: string) => void = () => {};

/** Where the one-time "which matrix library is in use" line goes (the CLI sends it to stderr). */
export function setGemmAnnouncer(fn: (message: string) => void): void {
  announce = fn;
}

/** The GEMM in use: the native library when one loads, else the TypeScript kernel (with a warning). */
export function gemm(): Gemm {
  if (active) return active;
  const native = loadNative();
  if ('error' in native) {
    active = typescriptGemm;
    if (!announced && process.env.TUNEKIT_BLAS !== 'none') {
      process.stderr.write(`tunekit: warning: ${native.error}; using the slow TypeScript matrix kernel\n`);
    }
  } else {
    active = native;
    const threads = Number(process.env.TUNEKIT_THREADS ?? 0);
    if (threads > 0) active.setThreads(threads);
    if (!announced) announce(`matrix products via ${native.name}`);
  }
  announced = true;
  return active;
}

/** Replaces the active GEMM (tests run one suite over both implementations). */
export function useGemm(g: Gemm): void {
  active = g;
}

export function nativeGemm(): Gemm | undefined {
  const native = loadNative();
  return 'error' in native ? undefined : native;
}

export function describeGemm(): string {
  const g = gemm();
  return g === typescriptGemm ? 'TypeScript fallback kernel' : `BLAS: ${g.name}`;
}
