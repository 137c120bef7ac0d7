;; Hot loops of the spectrum path, in WebAssembly SIMD (f64x2). Assembled by buildKernels.mjs
;; into kernelsWasm.ts. Everything is float64; pointers are byte offsets into the exported memory.
;; The callers (wasm.ts, gram.ts, tridiagonal.ts) own the layout and the bounds.
(module
  (memory (export "memory") 1)

  ;; Gram matrix, lower triangle: G[i, j] += Σ_{r<4} X[k+r, i]·X[k+r, j] for j ≤ i, i in [i0, i1),
  ;; over k = 0, 4, … < m. Callers pass row blocks of G small enough to stay in L2 while all of X streams by.
  ;; X is m×n row-major (m a multiple of 4, one spare element after it); G is n×n row-major,
  ;; zeroed by the caller, with one spare element (the pairs may write G[i, i+1]).
  ;; Four rows of X per pass over G: 16 flops per load/store of a G pair.
  (func (export "gramLower") (param $m i32) (param $n i32) (param $X i32) (param $G i32) (param $i0 i32) (param $i1 i32)
    (local $k i32) (local $i i32) (local $j i32) (local $row i32) (local $x0 i32) (local $rs i32) (local $off i32) (local $g i32)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local.set $rs (i32.shl (local.get $n) (i32.const 3)))
    (block $doneK (loop $ks
      (br_if $doneK (i32.ge_u (local.get $k) (local.get $m)))
      (local.set $x0 (i32.add (local.get $X) (i32.mul (local.get $k) (local.get $rs))))
      (local.set $i (local.get $i0))
      (block $doneI (loop $is
        (br_if $doneI (i32.ge_u (local.get $i) (local.get $i1)))
        (local.set $off (i32.add (local.get $x0) (i32.shl (local.get $i) (i32.const 3))))
        (local.set $a0 (v128.load64_splat (local.get $off)))
        (local.set $a1 (v128.load64_splat (i32.add (local.get $off) (local.get $rs))))
        (local.set $a2 (v128.load64_splat (i32.add (local.get $off) (i32.shl (local.get $rs) (i32.const 1)))))
        (local.set $a3 (v128.load64_splat (i32.add (local.get $off) (i32.mul (local.get $rs) (i32.const 3)))))
        (local.set $row (i32.add (local.get $G) (i32.mul (local.get $i) (local.get $rs))))
        (local.set $j (i32.const 0))
        (block $doneJ (loop $js
          (br_if $doneJ (i32.gt_u (local.get $j) (local.get $i)))
          (local.set $off (i32.add (local.get $x0) (i32.shl (local.get $j) (i32.const 3))))
          (local.set $g (i32.add (local.get $row) (i32.shl (local.get $j) (i32.const 3))))
          (v128.store (local.get $g)
            (f64x2.add (v128.load (local.get $g))
              (f64x2.add
                (f64x2.add (f64x2.mul (local.get $a0) (v128.load (local.get $off)))
                           (f64x2.mul (local.get $a1) (v128.load (i32.add (local.get $off) (local.get $rs)))))
                (f64x2.add (f64x2.mul (local.get $a2) (v128.load (i32.add (local.get $off) (i32.shl (local.get $rs) (i32.const 1)))))
                           (f64x2.mul (local.get $a3) (v128.load (i32.add (local.get $off) (i32.mul (local.get $rs) (i32.const 3)))))))))
          (local.set $j (i32.add (local.get $j) (i32.const 2)))
          (br $js)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $is)))
      (local.set $k (i32.add (local.get $k) (i32.const 4)))
      (br $ks)))
  )

  ;; One fused step of the Householder tridiagonalization, over rows/cols [k1, n) of the lower
  ;; triangle of row-major A (n×n):
  ;;   A[i, j] -= u_i·w_j + w_i·u_j         (the previous step's rank-2 update, j ≤ i)
  ;;   p += A·v                            (symmetric mat-vec with the updated A, for this step)
  ;; One sweep over A instead of two. p must be zero on [k1, n); u = w = 0 means "no pending update".
  (func (export "fusedRank2Symv") (param $n i32) (param $k1 i32) (param $A i32) (param $u i32) (param $w i32) (param $v i32) (param $p i32)
    (local $i i32) (local $j i32) (local $row i32) (local $off i32)
    (local $ui f64) (local $wi f64) (local $vi f64) (local $a f64) (local $s f64)
    (local $uS v128) (local $wS v128) (local $vS v128) (local $aV v128) (local $sV v128)
    (local.set $i (local.get $k1))
    (block $doneI (loop $rows
      (br_if $doneI (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $row (i32.add (local.get $A) (i32.shl (i32.mul (local.get $i) (local.get $n)) (i32.const 3))))
      (local.set $ui (f64.load (i32.add (local.get $u) (i32.shl (local.get $i) (i32.const 3)))))
      (local.set $wi (f64.load (i32.add (local.get $w) (i32.shl (local.get $i) (i32.const 3)))))
      (local.set $vi (f64.load (i32.add (local.get $v) (i32.shl (local.get $i) (i32.const 3)))))
      (local.set $uS (f64x2.splat (local.get $ui)))
      (local.set $wS (f64x2.splat (local.get $wi)))
      (local.set $vS (f64x2.splat (local.get $vi)))
      (local.set $sV (f64x2.splat (f64.const 0)))
      (local.set $j (local.get $k1))
      (block $doneJ (loop $cols
        (br_if $doneJ (i32.ge_u (i32.add (local.get $j) (i32.const 1)) (local.get $i)))
        (local.set $off (i32.shl (local.get $j) (i32.const 3)))
        (local.set $aV (f64x2.sub (v128.load (i32.add (local.get $row) (local.get $off)))
          (f64x2.add (f64x2.mul (local.get $uS) (v128.load (i32.add (local.get $w) (local.get $off))))
                     (f64x2.mul (local.get $wS) (v128.load (i32.add (local.get $u) (local.get $off)))))))
        (v128.store (i32.add (local.get $row) (local.get $off)) (local.get $aV))
        (local.set $sV (f64x2.add (local.get $sV) (f64x2.mul (local.get $aV) (v128.load (i32.add (local.get $v) (local.get $off))))))
        (v128.store (i32.add (local.get $p) (local.get $off))
          (f64x2.add (v128.load (i32.add (local.get $p) (local.get $off))) (f64x2.mul (local.get $aV) (local.get $vS))))
        (local.set $j (i32.add (local.get $j) (i32.const 2)))
        (br $cols)))
      (local.set $s (f64.add (f64x2.extract_lane 0 (local.get $sV)) (f64x2.extract_lane 1 (local.get $sV))))
      ;; at most one off-diagonal element is left, then the diagonal (j = i)
      (block $noTail
        (br_if $noTail (i32.ge_u (local.get $j) (local.get $i)))
        (local.set $off (i32.shl (local.get $j) (i32.const 3)))
        (local.set $a (f64.sub (f64.load (i32.add (local.get $row) (local.get $off)))
          (f64.add (f64.mul (local.get $ui) (f64.load (i32.add (local.get $w) (local.get $off))))
                   (f64.mul (local.get $wi) (f64.load (i32.add (local.get $u) (local.get $off)))))))
        (f64.store (i32.add (local.get $row) (local.get $off)) (local.get $a))
        (local.set $s (f64.add (local.get $s) (f64.mul (local.get $a) (f64.load (i32.add (local.get $v) (local.get $off))))))
        (f64.store (i32.add (local.get $p) (local.get $off))
          (f64.add (f64.load (i32.add (local.get $p) (local.get $off))) (f64.mul (local.get $a) (local.get $vi)))))
      (local.set $off (i32.shl (local.get $i) (i32.const 3)))
      (local.set $a (f64.sub (f64.load (i32.add (local.get $row) (local.get $off)))
        (f64.mul (f64.const 2) (f64.mul (local.get $ui) (local.get $wi)))))
      (f64.store (i32.add (local.get $row) (local.get $off)) (local.get $a))
      (f64.store (i32.add (local.get $p) (local.get $off))
        (f64.add (f64.load (i32.add (local.get $p) (local.get $off))) (f64.add (local.get $s) (f64.mul (local.get $a) (local.get $vi)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $rows)))
  )

  ;; Plane rotation of two rows of length len: x ← c·x − s·y, y ← s·x + c·y (eigenvector accumulation).
  (func (export "rotateRows") (param $x i32) (param $y i32) (param $len i32) (param $c f64) (param $s f64)
    (local $end i32) (local $xv v128) (local $yv v128) (local $cS v128) (local $sS v128) (local $xs f64) (local $ys f64)
    (local.set $cS (f64x2.splat (local.get $c)))
    (local.set $sS (f64x2.splat (local.get $s)))
    (local.set $end (i32.add (local.get $x) (i32.shl (i32.and (local.get $len) (i32.const -2)) (i32.const 3))))
    (block $done (loop $pairs
      (br_if $done (i32.ge_u (local.get $x) (local.get $end)))
      (local.set $xv (v128.load (local.get $x)))
      (local.set $yv (v128.load (local.get $y)))
      (v128.store (local.get $x) (f64x2.sub (f64x2.mul (local.get $cS) (local.get $xv)) (f64x2.mul (local.get $sS) (local.get $yv))))
      (v128.store (local.get $y) (f64x2.add (f64x2.mul (local.get $sS) (local.get $xv)) (f64x2.mul (local.get $cS) (local.get $yv))))
      (local.set $x (i32.add (local.get $x) (i32.const 16)))
      (local.set $y (i32.add (local.get $y) (i32.const 16)))
      (br $pairs)))
    (if (i32.and (local.get $len) (i32.const 1)) (then
      (local.set $xs (f64.load (local.get $x)))
      (local.set $ys (f64.load (local.get $y)))
      (f64.store (local.get $x) (f64.sub (f64.mul (local.get $c) (local.get $xs)) (f64.mul (local.get $s) (local.get $ys))))
      (f64.store (local.get $y) (f64.add (f64.mul (local.get $s) (local.get $xs)) (f64.mul (local.get $c) (local.get $ys))))))
  )

  ;; Apply a Householder reflector H = I − τ·v·vᵀ (v nonzero on [lo, n)) to each of `count` rows
  ;; of Z (row-major, row length n): z ← z − τ·(v·z)·v. Used to turn eigenvectors of the
  ;; tridiagonal matrix into eigenvectors of the Gram matrix.
  (func (export "reflectRows") (param $Z i32) (param $count i32) (param $n i32) (param $v i32) (param $lo i32) (param $tau f64)
    (local $r i32) (local $row i32) (local $j i32) (local $sV v128) (local $s f64) (local $tS v128)
    (block $doneR (loop $rows
      (br_if $doneR (i32.ge_u (local.get $r) (local.get $count)))
      (local.set $row (i32.add (local.get $Z) (i32.shl (i32.mul (local.get $r) (local.get $n)) (i32.const 3))))
      (local.set $sV (f64x2.splat (f64.const 0)))
      (local.set $j (local.get $lo))
      (block $d1 (loop $dot
        (br_if $d1 (i32.ge_u (i32.add (local.get $j) (i32.const 1)) (local.get $n)))
        (local.set $sV (f64x2.add (local.get $sV) (f64x2.mul
          (v128.load (i32.add (local.get $row) (i32.shl (local.get $j) (i32.const 3))))
          (v128.load (i32.add (local.get $v) (i32.shl (local.get $j) (i32.const 3)))))))
        (local.set $j (i32.add (local.get $j) (i32.const 2)))
        (br $dot)))
      (local.set $s (f64.add (f64x2.extract_lane 0 (local.get $sV)) (f64x2.extract_lane 1 (local.get $sV))))
      (if (i32.lt_u (local.get $j) (local.get $n)) (then
        (local.set $s (f64.add (local.get $s) (f64.mul
          (f64.load (i32.add (local.get $row) (i32.shl (local.get $j) (i32.const 3))))
          (f64.load (i32.add (local.get $v) (i32.shl (local.get $j) (i32.const 3)))))))))
      (local.set $s (f64.mul (local.get $s) (local.get $tau)))
      (local.set $tS (f64x2.splat (local.get $s)))
      (local.set $j (local.get $lo))
      (block $d2 (loop $axpy
        (br_if $d2 (i32.ge_u (i32.add (local.get $j) (i32.const 1)) (local.get $n)))
        (v128.store (i32.add (local.get $row) (i32.shl (local.get $j) (i32.const 3)))
          (f64x2.sub (v128.load (i32.add (local.get $row) (i32.shl (local.get $j) (i32.const 3))))
            (f64x2.mul (local.get $tS) (v128.load (i32.add (local.get $v) (i32.shl (local.get $j) (i32.const 3)))))))
        (local.set $j (i32.add (local.get $j) (i32.const 2)))
        (br $axpy)))
      (if (i32.lt_u (local.get $j) (local.get $n)) (then
        (f64.store (i32.add (local.get $row) (i32.shl (local.get $j) (i32.const 3)))
          (f64.sub (f64.load (i32.add (local.get $row) (i32.shl (local.get $j) (i32.const 3))))
            (f64.mul (local.get $s) (f64.load (i32.add (local.get $v) (i32.shl (local.get $j) (i32.const 3)))))))))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $rows)))
  )

  ;; C (m×kp) += A (m×n) · B (n×kp), all row-major; kp even (callers pad B and C with a spare
  ;; column when k is odd). Four rows of B per pass over a row of C, which stays in L1.
  (func (export "matmulAdd") (param $m i32) (param $n i32) (param $kp i32) (param $A i32) (param $B i32) (param $C i32)
    (local $i i32) (local $j i32) (local $t i32) (local $arow i32) (local $crow i32) (local $b0 i32) (local $bs i32) (local $cend i32) (local $c i32) (local $b i32)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local.set $bs (i32.shl (local.get $kp) (i32.const 3)))
    (block $doneI (loop $rows
      (br_if $doneI (i32.ge_u (local.get $i) (local.get $m)))
      (local.set $arow (i32.add (local.get $A) (i32.shl (i32.mul (local.get $i) (local.get $n)) (i32.const 3))))
      (local.set $crow (i32.add (local.get $C) (i32.mul (local.get $i) (local.get $bs))))
      (local.set $cend (i32.add (local.get $crow) (local.get $bs)))
      (local.set $j (i32.const 0))
      ;; four rows of B at a time
      (block $doneJ4 (loop $j4
        (br_if $doneJ4 (i32.gt_u (i32.add (local.get $j) (i32.const 4)) (local.get $n)))
        (local.set $a0 (v128.load64_splat (i32.add (local.get $arow) (i32.shl (local.get $j) (i32.const 3)))))
        (local.set $a1 (v128.load64_splat (i32.add (local.get $arow) (i32.shl (i32.add (local.get $j) (i32.const 1)) (i32.const 3)))))
        (local.set $a2 (v128.load64_splat (i32.add (local.get $arow) (i32.shl (i32.add (local.get $j) (i32.const 2)) (i32.const 3)))))
        (local.set $a3 (v128.load64_splat (i32.add (local.get $arow) (i32.shl (i32.add (local.get $j) (i32.const 3)) (i32.const 3)))))
        (local.set $b (i32.add (local.get $B) (i32.mul (local.get $j) (local.get $bs))))
        (local.set $c (local.get $crow))
        (block $doneT (loop $ts
          (br_if $doneT (i32.ge_u (local.get $c) (local.get $cend)))
          (v128.store (local.get $c)
            (f64x2.add (v128.load (local.get $c))
              (f64x2.add
                (f64x2.add (f64x2.mul (local.get $a0) (v128.load (local.get $b)))
                           (f64x2.mul (local.get $a1) (v128.load (i32.add (local.get $b) (local.get $bs)))))
                (f64x2.add (f64x2.mul (local.get $a2) (v128.load (i32.add (local.get $b) (i32.shl (local.get $bs) (i32.const 1)))))
                           (f64x2.mul (local.get $a3) (v128.load (i32.add (local.get $b) (i32.mul (local.get $bs) (i32.const 3)))))))))
          (local.set $c (i32.add (local.get $c) (i32.const 16)))
          (local.set $b (i32.add (local.get $b) (i32.const 16)))
          (br $ts)))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $j4)))
      ;; the last n mod 4 rows of B one at a time
      (block $doneJ1 (loop $j1
        (br_if $doneJ1 (i32.ge_u (local.get $j) (local.get $n)))
        (local.set $a0 (v128.load64_splat (i32.add (local.get $arow) (i32.shl (local.get $j) (i32.const 3)))))
        (local.set $b (i32.add (local.get $B) (i32.mul (local.get $j) (local.get $bs))))
        (local.set $c (local.get $crow))
        (block $doneT1 (loop $t1
          (br_if $doneT1 (i32.ge_u (local.get $c) (local.get $cend)))
          (v128.store (local.get $c) (f64x2.add (v128.load (local.get $c)) (f64x2.mul (local.get $a0) (v128.load (local.get $b)))))
          (local.set $c (i32.add (local.get $c) (i32.const 16)))
          (local.set $b (i32.add (local.get $b) (i32.const 16)))
          (br $t1)))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $j1)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $rows)))
  )
)
