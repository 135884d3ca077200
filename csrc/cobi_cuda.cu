// Fused CoBi in CUDA C++: the algorithm of rawzoom_isp/loss/triton_kernels.py (see its docstring for
// the math), with shared-memory tiles and fp32 accumulation. Tiles are TILE x TILE (target rows i x
// output columns k); each thread owns one pair. The N x M matrices are never stored: per image the
// forward keeps row minima, row log-sums and column maxima, and the backward recomputes tiles.
//
// Ops (namespace rawzoom_cuda), all tensors CUDA fp32, contiguous; targets (B, M, C), outputs (B, N, C),
// positions (M, 2) / (N, 2):
//   cobi_forward(t, o, pt, po, nn, cosine, spatial, h, eps, w)
//       -> (best (B, N), arg (B, N) int64, row_min (B, M), row_argmin (B, M) int64, row_logsum (B, M))
//   cobi_dense_backward(t, o, pt, po, row_min, row_logsum, r, arg, coef, cosine, spatial, h, eps, w)
//       -> (d_t (B, M, C), d_o (B, N, C), through_min (B, M))
#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <cfloat>
#include <tuple>

namespace {

constexpr int TILE = 32;   // rows and columns of a tile; blockDim = (TILE, TILE / ROWS_PER_THREAD)
constexpr int CHUNK = 32;  // channels loaded into shared memory per step

struct Problem {
  const float* t;   // (M, C) of this image
  const float* o;   // (N, C)
  const float* tn;  // (M) squared norms (l2) or nullptr
  const float* on;  // (N)
  const float* pt;  // (M, 2)
  const float* po;  // (N, 2)
  int M, N, C;
  bool cosine, spatial;
  float w;
};

// D for the tile [row0, row0 + TILE) x [col0, col0 + TILE); thread (x, y) gets D(row0 + y, col0 + x).
// Every thread of the block must call it (it synchronises). Out-of-range pairs give +inf.
__device__ float distance_at(const Problem& p, int row0, int col0, float (*ts)[CHUNK + 1],
                             float (*os)[CHUNK + 1]) {
  const int x = threadIdx.x, y = threadIdx.y;
  const int row = row0 + y, col = col0 + x;
  float dot = 0.f;
  for (int c0 = 0; c0 < p.C; c0 += CHUNK) {
    // TILE x CHUNK elements of each operand, loaded by the TILE x TILE threads.
    for (int idx = y * TILE + x; idx < TILE * CHUNK; idx += TILE * TILE) {
      const int r = idx / CHUNK, c = idx % CHUNK;
      const int gr = row0 + r, gk = col0 + r, gc = c0 + c;
      ts[r][c] = (gr < p.M && gc < p.C) ? p.t[(long)gr * p.C + gc] : 0.f;
      os[r][c] = (gk < p.N && gc < p.C) ? p.o[(long)gk * p.C + gc] : 0.f;
    }
    __syncthreads();
#pragma unroll 8
    for (int c = 0; c < CHUNK; ++c) dot = fmaf(ts[y][c], os[x][c], dot);
    __syncthreads();
  }
  if (row >= p.M || col >= p.N) return INFINITY;
  float d = p.cosine ? 0.5f - 0.5f * dot : fmaxf(p.tn[row] + p.on[col] - 2.f * dot, 0.f);
  if (p.spatial) {
    const float dy = p.pt[2 * row] - p.po[2 * col], dx = p.pt[2 * row + 1] - p.po[2 * col + 1];
    d += p.w * sqrtf(dy * dy + dx * dx);
  }
  return d;
}

// Warp-wide (32 lanes = threadIdx.x) arg-reductions; ties keep the lower index, as torch does.
__device__ void warp_argmin(float& v, int& i) {
  for (int off = 16; off > 0; off >>= 1) {
    const float ov = __shfl_down_sync(0xffffffff, v, off);
    const int oi = __shfl_down_sync(0xffffffff, i, off);
    if (ov < v || (ov == v && oi < i)) { v = ov; i = oi; }
  }
}

__device__ float warp_sum(float v) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffff, v, off);
  return v;
}

Problem problem_for(const float* t, const float* o, const float* tn, const float* on, const float* pt,
                    const float* po, int M, int N, int C, bool cosine, bool spatial, float w) {
  return Problem{t, o, tn, on, pt, po, M, N, C, cosine, spatial, w};
}

__device__ Problem image_problem(Problem p) {
  const long b = blockIdx.z;
  p.t += b * p.M * p.C;
  p.o += b * p.N * p.C;
  if (!p.cosine) {
    p.tn += b * p.M;
    p.on += b * p.N;
  }
  return p;
}

// Rows: thread (x, y) sees D(row y, column x); a warp spans the tile's columns of one row.
__global__ void __launch_bounds__(TILE * TILE, 1) row_min_kernel(Problem base, float* row_min, int64_t* row_argmin) {
  __shared__ float ts[TILE][CHUNK + 1], os[TILE][CHUNK + 1];
  const Problem p = image_problem(base);
  const int row0 = blockIdx.x * TILE, row = row0 + threadIdx.y;
  float best = INFINITY;
  int arg = 0;
  for (int col0 = 0; col0 < p.N; col0 += TILE) {
    float v = distance_at(p, row0, col0, ts, os);
    int i = col0 + threadIdx.x;
    warp_argmin(v, i);
    if (v < best) { best = v; arg = i; }
  }
  if (threadIdx.x == 0 && row < p.M) {
    row_min[(long)blockIdx.z * p.M + row] = best;
    row_argmin[(long)blockIdx.z * p.M + row] = arg;
  }
}

__global__ void __launch_bounds__(TILE * TILE, 1) row_logsum_kernel(Problem base, const float* row_min, float* row_logsum, float h, float eps) {
  __shared__ float ts[TILE][CHUNK + 1], os[TILE][CHUNK + 1];
  const Problem p = image_problem(base);
  const int row0 = blockIdx.x * TILE, row = row0 + threadIdx.y;
  const float m = row < p.M ? row_min[(long)blockIdx.z * p.M + row] : 0.f;
  const float scale = 1.f / ((m + eps) * h), top = 1.f / h - m * scale;
  float total = 0.f;
  for (int col0 = 0; col0 < p.N; col0 += TILE) {
    const float d = distance_at(p, row0, col0, ts, os);
    total += warp_sum(__expf(1.f / h - d * scale - top));
  }
  if (threadIdx.x == 0 && row < p.M) row_logsum[(long)blockIdx.z * p.M + row] = top + logf(total);
}

// Columns: thread (x, y) sees D(row x, column y); a warp spans the tile's rows of one column.
__device__ float distance_transposed(const Problem& p, int row0, int col0, float (*ts)[CHUNK + 1],
                                     float (*os)[CHUNK + 1]) {
  // The same tile with the roles of x and y swapped: rows along the warp.
  Problem swapped = p;
  swapped.t = p.o; swapped.o = p.t; swapped.M = p.N; swapped.N = p.M;
  swapped.tn = p.on; swapped.on = p.tn; swapped.pt = p.po; swapped.po = p.pt;
  return distance_at(swapped, col0, row0, ts, os);
}

__global__ void __launch_bounds__(TILE * TILE, 1) col_reduce_kernel(Problem base, const float* row_min, const float* row_logsum, float* best_out,
                                  int64_t* arg_out, bool nn, float h, float eps) {
  __shared__ float ts[TILE][CHUNK + 1], os[TILE][CHUNK + 1];
  const Problem p = image_problem(base);
  const int col0 = blockIdx.x * TILE, col = col0 + threadIdx.y;
  // nn: minimum of D over rows; contextual: maximum of log CX = L - logS (as a minimum of its negative).
  float best = INFINITY;
  int arg = 0;
  for (int row0 = 0; row0 < p.M; row0 += TILE) {
    const int row = row0 + threadIdx.x;
    const float d = distance_transposed(p, row0, col0, ts, os);
    float v = INFINITY;
    if (row < p.M && col < p.N) {
      if (nn) {
        v = d;
      } else {
        const long at = (long)blockIdx.z * p.M + row;
        v = -((1.f - d / (row_min[at] + eps)) / h - row_logsum[at]);
      }
    }
    int i = row;
    warp_argmin(v, i);
    if (v < best) { best = v; arg = i; }
  }
  if (threadIdx.x == 0 && col < p.N) {
    best_out[(long)blockIdx.z * p.N + col] = nn ? best : -best;
    arg_out[(long)blockIdx.z * p.N + col] = arg;
  }
}

// dD (dense part) and dL at one pair: dL = [a(k) = i] c_k - CX_ik r_i, dD = -dL / (h (m_i + eps)).
__device__ void dense_grad(float d, int row, int col, const Problem& p, const float* row_min, const float* row_logsum,
                           const float* r, const int64_t* owner, const float* coef, float h, float eps, float& d_dist,
                           float& d_logit) {
  d_dist = 0.f;
  d_logit = 0.f;
  if (row >= p.M || col >= p.N) return;
  const long at = (long)blockIdx.z * p.M + row, ak = (long)blockIdx.z * p.N + col;
  const float m = row_min[at];
  const float cx = __expf((1.f - d / (m + eps)) / h - row_logsum[at]);
  d_logit = (owner[ak] == row ? coef[ak] : 0.f) - cx * r[at];
  d_dist = -d_logit / (h * (m + eps));
}

// dT for TILE rows x CHUNK output channels (blockIdx.y picks the channel chunk); through_min by chunk 0.
__global__ void __launch_bounds__(TILE * TILE, 1) grad_rows_kernel(Problem base, const float* row_min, const float* row_logsum, const float* r,
                                 const int64_t* owner, const float* coef, float* d_t, float* through_min, float h,
                                 float eps) {
  __shared__ float ts[TILE][CHUNK + 1], os[TILE][CHUNK + 1];
  __shared__ float dds[TILE][TILE + 1];
  const Problem p = image_problem(base);
  const int row0 = blockIdx.x * TILE, row = row0 + threadIdx.y;
  const int c = blockIdx.y * CHUNK + threadIdx.x;  // this thread's output channel
  float acc = 0.f, row_sum = 0.f, through = 0.f;
  for (int col0 = 0; col0 < p.N; col0 += TILE) {
    const int col = col0 + threadIdx.x;
    const float d = distance_at(p, row0, col0, ts, os);
    float dd, dl;
    dense_grad(d, row, col, p, row_min, row_logsum, r, owner, coef, h, eps, dd, dl);
    through += warp_sum(col < p.N ? dl * d : 0.f);
    row_sum += warp_sum(dd);
    dds[threadIdx.y][threadIdx.x] = dd;
    __syncthreads();
    for (int k = 0; k < TILE && col0 + k < p.N; ++k) {
      const float ov = c < p.C ? p.o[(long)(col0 + k) * p.C + c] : 0.f;
      acc = fmaf(dds[threadIdx.y][k], ov, acc);
    }
    __syncthreads();
  }
  row_sum = __shfl_sync(0xffffffff, row_sum, 0);
  through = __shfl_sync(0xffffffff, through, 0);
  if (row < p.M && c < p.C) {
    const long at = ((long)blockIdx.z * p.M + row) * p.C + c;
    d_t[at] = p.cosine ? -0.5f * acc : 2.f * (p.t[(long)row * p.C + c] * row_sum - acc);
  }
  if (blockIdx.y == 0 && threadIdx.x == 0 && row < p.M) {
    const float m = row_min[(long)blockIdx.z * p.M + row];
    through_min[(long)blockIdx.z * p.M + row] = through / (h * (m + eps) * (m + eps));
  }
}

// dO for TILE columns x CHUNK channels; thread (x, y) sees the pair (row x, column y).
__global__ void __launch_bounds__(TILE * TILE, 1) grad_cols_kernel(Problem base, const float* row_min, const float* row_logsum, const float* r,
                                 const int64_t* owner, const float* coef, float* d_o, float h, float eps) {
  __shared__ float ts[TILE][CHUNK + 1], os[TILE][CHUNK + 1];
  __shared__ float dds[TILE][TILE + 1];
  const Problem p = image_problem(base);
  const int col0 = blockIdx.x * TILE, col = col0 + threadIdx.y;
  const int c = blockIdx.y * CHUNK + threadIdx.x;
  float acc = 0.f, col_sum = 0.f;
  for (int row0 = 0; row0 < p.M; row0 += TILE) {
    const int row = row0 + threadIdx.x;
    const float d = distance_transposed(p, row0, col0, ts, os);
    float dd, dl;
    dense_grad(d, row, col, p, row_min, row_logsum, r, owner, coef, h, eps, dd, dl);
    col_sum += warp_sum(dd);
    dds[threadIdx.y][threadIdx.x] = dd;  // [column][row]
    __syncthreads();
    for (int k = 0; k < TILE && row0 + k < p.M; ++k) {
      const float tv = c < p.C ? p.t[(long)(row0 + k) * p.C + c] : 0.f;
      acc = fmaf(dds[threadIdx.y][k], tv, acc);
    }
    __syncthreads();
  }
  col_sum = __shfl_sync(0xffffffff, col_sum, 0);
  if (col < p.N && c < p.C) {
    const long at = ((long)blockIdx.z * p.N + col) * p.C + c;
    d_o[at] = p.cosine ? -0.5f * acc : 2.f * (p.o[(long)col * p.C + c] * col_sum - acc);
  }
}

void check(const at::Tensor& x, const char* name) {
  TORCH_CHECK(x.is_cuda() && x.scalar_type() == at::kFloat && x.is_contiguous(), name,
              " must be a contiguous CUDA float32 tensor");
}

struct Launch {
  at::Tensor tn, on;
  Problem problem;
  int B, M, N, C;
};

Launch prepare(const at::Tensor& t, const at::Tensor& o, const at::Tensor& pt, const at::Tensor& po, bool cosine,
               bool spatial, double w) {
  check(t, "targets");
  check(o, "outputs");
  check(pt, "target positions");
  check(po, "output positions");
  Launch l;
  l.B = t.size(0); l.M = t.size(1); l.N = o.size(1); l.C = t.size(2);
  TORCH_CHECK(o.size(0) == l.B && o.size(2) == l.C, "targets and outputs must share batch and channels");
  if (!cosine) {
    l.tn = (t * t).sum(-1).contiguous();
    l.on = (o * o).sum(-1).contiguous();
  }
  l.problem = problem_for(t.data_ptr<float>(), o.data_ptr<float>(), cosine ? nullptr : l.tn.data_ptr<float>(),
                          cosine ? nullptr : l.on.data_ptr<float>(), pt.data_ptr<float>(), po.data_ptr<float>(),
                          l.M, l.N, l.C, cosine, spatial, static_cast<float>(w));
  return l;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> cobi_forward(
    const at::Tensor& t, const at::Tensor& o, const at::Tensor& pt, const at::Tensor& po, bool nn, bool cosine,
    bool spatial, double h, double eps, double w) {
  const c10::cuda::CUDAGuard guard(t.device());
  Launch l = prepare(t, o, pt, po, cosine, spatial, w);
  auto f32 = t.options(), i64 = t.options().dtype(at::kLong);
  at::Tensor best = at::empty({l.B, l.N}, f32), arg = at::empty({l.B, l.N}, i64);
  at::Tensor row_min = at::zeros({l.B, l.M}, f32), row_argmin = at::zeros({l.B, l.M}, i64);
  at::Tensor row_logsum = at::zeros({l.B, l.M}, f32);
  const dim3 block(TILE, TILE);
  const dim3 rows((l.M + TILE - 1) / TILE, 1, l.B), cols((l.N + TILE - 1) / TILE, 1, l.B);
  auto stream = c10::cuda::getCurrentCUDAStream();
  if (!nn) {
    row_min_kernel<<<rows, block, 0, stream>>>(l.problem, row_min.data_ptr<float>(), row_argmin.data_ptr<int64_t>());
    row_logsum_kernel<<<rows, block, 0, stream>>>(l.problem, row_min.data_ptr<float>(), row_logsum.data_ptr<float>(),
                                                  static_cast<float>(h), static_cast<float>(eps));
  }
  col_reduce_kernel<<<cols, block, 0, stream>>>(l.problem, row_min.data_ptr<float>(), row_logsum.data_ptr<float>(),
                                                best.data_ptr<float>(), arg.data_ptr<int64_t>(), nn,
                                                static_cast<float>(h), static_cast<float>(eps));
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {best, arg, row_min, row_argmin, row_logsum};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> cobi_dense_backward(
    const at::Tensor& t, const at::Tensor& o, const at::Tensor& pt, const at::Tensor& po, const at::Tensor& row_min,
    const at::Tensor& row_logsum, const at::Tensor& r, const at::Tensor& arg, const at::Tensor& coef, bool cosine,
    bool spatial, double h, double eps, double w) {
  const c10::cuda::CUDAGuard guard(t.device());
  Launch l = prepare(t, o, pt, po, cosine, spatial, w);
  check(row_min, "row_min");
  check(row_logsum, "row_logsum");
  check(r, "r");
  check(coef, "coef");
  TORCH_CHECK(arg.is_cuda() && arg.scalar_type() == at::kLong && arg.is_contiguous(), "arg must be CUDA int64");
  at::Tensor d_t = at::empty_like(t), d_o = at::empty_like(o), through = at::zeros({l.B, l.M}, t.options());
  const dim3 block(TILE, TILE);
  const int chunks = (l.C + CHUNK - 1) / CHUNK;
  auto stream = c10::cuda::getCurrentCUDAStream();
  grad_rows_kernel<<<dim3((l.M + TILE - 1) / TILE, chunks, l.B), block, 0, stream>>>(
      l.problem, row_min.data_ptr<float>(), row_logsum.data_ptr<float>(), r.data_ptr<float>(),
      arg.data_ptr<int64_t>(), coef.data_ptr<float>(), d_t.data_ptr<float>(), through.data_ptr<float>(),
      static_cast<float>(h), static_cast<float>(eps));
  grad_cols_kernel<<<dim3((l.N + TILE - 1) / TILE, chunks, l.B), block, 0, stream>>>(
      l.problem, row_min.data_ptr<float>(), row_logsum.data_ptr<float>(), r.data_ptr<float>(),
      arg.data_ptr<int64_t>(), coef.data_ptr<float>(), d_o.data_ptr<float>(), static_cast<float>(h),
      static_cast<float>(eps));
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {d_t, d_o, through};
}

}  // namespace

TORCH_LIBRARY(rawzoom_cuda, m) {
  m.def("cobi_forward(Tensor t, Tensor o, Tensor pt, Tensor po, bool nn, bool cosine, bool spatial, float h, "
        "float eps, float w) -> (Tensor, Tensor, Tensor, Tensor, Tensor)");
  m.def("cobi_dense_backward(Tensor t, Tensor o, Tensor pt, Tensor po, Tensor row_min, Tensor row_logsum, "
        "Tensor r, Tensor arg, Tensor coef, bool cosine, bool spatial, float h, float eps, float w) "
        "-> (Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(rawzoom_cuda, CUDA, m) {
  m.impl("cobi_forward", &cobi_forward);
  m.impl("cobi_dense_backward", &cobi_dense_backward);
}
