// Pure-TypeScript sgemm: the fallback where no BLAS library loads, and the reference the native path
// is tested against. Row-major, same contract as cblas_sgemm. The inner loop runs over contiguous
// memory of B (or of B's rows when B is transposed), which keeps it a few GFLOP/s rather than far less.

export function tsSgemm(
  transA: boolean, transB: boolean, M: number, N: number, K: number,
  alpha: number, A: Float32Array, lda: number, B: Float32Array, ldb: number,
  beta: number, C: Float32Array, ldc: number,
): void {
  for (let i = 0; i < M; i++) {
    const c0 = i * ldc;
    if (beta === 0) C.fill(0, c0, c0 + N);
    else if (beta !== 1) for (let j = 0; j < N; j++) C[c0 + j]! *= beta;
  }
  if (!transB) {
    // C[i,:] += alpha * A[i,k] * B[k,:]
    for (let i = 0; i < M; i++) {
      const c0 = i * ldc;
      for (let k = 0; k < K; k++) {
        const a = alpha * (transA ? A[k * lda + i]! : A[i * lda + k]!);
        if (a === 0) continue;
        const b0 = k * ldb;
        for (let j = 0; j < N; j++) C[c0 + j]! += a * B[b0 + j]!;
      }
    }
    return;
  }
  // C[i,j] += alpha * dot(A[i,:], B[j,:]); A's row gathered once when A is transposed.
  const arow = new Float32Array(K);
  for (let i = 0; i < M; i++) {
    if (transA) for (let k = 0; k < K; k++) arow[k] = A[k * lda + i]!;
    else for (let k = 0; k < K; k++) arow[k] = A[i * lda + k]!;
    const c0 = i * ldc;
    for (let j = 0; j < N; j++) {
      const b0 = j * ldb;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      let k = 0;
      for (; k + 3 < K; k += 4) {
        s0 += arow[k]! * B[b0 + k]!;
        s1 += arow[k + 1]! * B[b0 + k + 1]!;
        s2 += arow[k + 2]! * B[b0 + k + 2]!;
        s3 += arow[k + 3]! * B[b0 + k + 3]!;
      }
      for (; k < K; k++) s0 += arow[k]! * B[b0 + k]!;
      C[c0 + j]! += alpha * (s0 + s1 + s2 + s3);
    }
  }
}
