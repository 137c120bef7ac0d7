;; Hot loops of the spectrum path, in WebAssembly SIMD (f64x2). Assembled by buildKernels.mjs
;; into kernelsWasm.ts. Everything is float64; pointers are byte offsets into the imported (shared)
;; memory. The callers (wasm.ts, gram.ts, blockedTridiagonal.ts, product.ts, …) own the layout and
;; the bounds.
(module
  ;; Shared, imported memory: the two threads of a team (team.ts) run kernels on the same arrays.
  ;; 32768 pages = 2 GiB, MAX_KERNEL_BYTES.
  (import "env" "memory" (memory 1 32768 shared))

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

  ;; Packs `kc` rows × `cols` columns of row-major src (row stride $ld doubles) into 4-wide strips
  ;; at dst: strip s holds a_p[4s..4s+4) for p = 0…kc−1 contiguously (kc×4), the last strip padded
  ;; with zeros. The operand layout of gemmPacked.
  (func (export "packStrips") (param $src i32) (param $ld i32) (param $kc i32) (param $cols i32) (param $dst i32)
    (local $s i32) (local $p i32) (local $full i32) (local $from i32) (local $rs i32) (local $t i32) (local $rem i32)
    (local.set $rs (i32.shl (local.get $ld) (i32.const 3)))
    (local.set $full (i32.and (local.get $cols) (i32.const -4)))
    (block $doneS (loop $strips
      (br_if $doneS (i32.ge_u (local.get $s) (local.get $full)))
      (local.set $from (i32.add (local.get $src) (i32.shl (local.get $s) (i32.const 3))))
      (local.set $p (i32.const 0))
      (block $doneP (loop $ps
        (br_if $doneP (i32.ge_u (local.get $p) (local.get $kc)))
        (v128.store (local.get $dst) (v128.load (local.get $from)))
        (v128.store (i32.add (local.get $dst) (i32.const 16)) (v128.load (i32.add (local.get $from) (i32.const 16))))
        (local.set $dst (i32.add (local.get $dst) (i32.const 32)))
        (local.set $from (i32.add (local.get $from) (local.get $rs)))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $ps)))
      (local.set $s (i32.add (local.get $s) (i32.const 4)))
      (br $strips)))
    (local.set $rem (i32.sub (local.get $cols) (local.get $full)))
    (if (i32.gt_u (local.get $rem) (i32.const 0)) (then
      (local.set $from (i32.add (local.get $src) (i32.shl (local.get $full) (i32.const 3))))
      (local.set $p (i32.const 0))
      (block $doneR (loop $rs2
        (br_if $doneR (i32.ge_u (local.get $p) (local.get $kc)))
        (local.set $t (i32.const 0))
        (block $doneT (loop $ts
          (br_if $doneT (i32.ge_u (local.get $t) (i32.const 4)))
          (f64.store (i32.add (local.get $dst) (i32.shl (local.get $t) (i32.const 3)))
            (select (f64.load (i32.add (local.get $from) (i32.shl (local.get $t) (i32.const 3)))) (f64.const 0)
              (i32.lt_u (local.get $t) (local.get $rem))))
          (local.set $t (i32.add (local.get $t) (i32.const 1)))
          (br $ts)))
        (local.set $dst (i32.add (local.get $dst) (i32.const 32)))
        (local.set $from (i32.add (local.get $from) (local.get $rs)))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $rs2)))))
  )

  ;; C += alpha · Σ_{p<kc} a_p ⊗ b_p (a rank-kc update, C = alpha·AᵀB for p-major A, B) on 4×4
  ;; tiles from packed strips (packStrips): A's strip i/4 gives C's rows i…i+3, B's strip j/4 its
  ;; columns j…j+3. C is row-major with row stride $ldc doubles; M and N are multiples of 4 and C
  ;; has room for the padded tiles (their zero strips add exact zeros). Tiles wholly right of the
  ;; diagonal j = i + diag are skipped (symmetric updates fill the lower triangle; a huge diag
  ;; skips none). 8 accumulators, 4 splat + 2 loads per 16 SIMD mul/adds: compute-bound in L1/L2.
  (func (export "gemmPacked") (param $kc i32) (param $M i32) (param $N i32) (param $A i32) (param $B i32) (param $C i32) (param $ldc i32) (param $diag i32) (param $alpha f64)
    (local $i i32) (local $j i32) (local $as i32) (local $ap i32) (local $bp i32) (local $aEnd i32) (local $c i32) (local $rs i32) (local $sb i32)
    (local $c00 v128) (local $c01 v128) (local $c10 v128) (local $c11 v128) (local $c20 v128) (local $c21 v128) (local $c30 v128) (local $c31 v128)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128) (local $b0 v128) (local $b1 v128) (local $al v128)
    (local.set $rs (i32.shl (local.get $ldc) (i32.const 3)))
    (local.set $sb (i32.shl (local.get $kc) (i32.const 5)))
    (local.set $al (f64x2.splat (local.get $alpha)))
    (block $doneI (loop $is
      (br_if $doneI (i32.ge_s (local.get $i) (local.get $M)))
      (local.set $as (i32.add (local.get $A) (i32.mul (i32.shr_u (local.get $i) (i32.const 2)) (local.get $sb))))
      (local.set $j (i32.const 0))
      (block $doneJ (loop $js
        (br_if $doneJ (i32.ge_s (local.get $j) (local.get $N)))
        (br_if $doneJ (i32.gt_s (local.get $j) (i32.add (i32.add (local.get $i) (i32.const 3)) (local.get $diag))))
        (local.set $c00 (f64x2.splat (f64.const 0))) (local.set $c01 (f64x2.splat (f64.const 0)))
        (local.set $c10 (f64x2.splat (f64.const 0))) (local.set $c11 (f64x2.splat (f64.const 0)))
        (local.set $c20 (f64x2.splat (f64.const 0))) (local.set $c21 (f64x2.splat (f64.const 0)))
        (local.set $c30 (f64x2.splat (f64.const 0))) (local.set $c31 (f64x2.splat (f64.const 0)))
        (local.set $ap (local.get $as))
        (local.set $aEnd (i32.add (local.get $as) (local.get $sb)))
        (local.set $bp (i32.add (local.get $B) (i32.mul (i32.shr_u (local.get $j) (i32.const 2)) (local.get $sb))))
        (block $doneP (loop $ps
          (br_if $doneP (i32.ge_u (local.get $ap) (local.get $aEnd)))
          (local.set $a0 (v128.load64_splat (local.get $ap)))
          (local.set $a1 (v128.load64_splat offset=8 (local.get $ap)))
          (local.set $a2 (v128.load64_splat offset=16 (local.get $ap)))
          (local.set $a3 (v128.load64_splat offset=24 (local.get $ap)))
          (local.set $b0 (v128.load (local.get $bp)))
          (local.set $b1 (v128.load offset=16 (local.get $bp)))
          (local.set $c00 (f64x2.add (local.get $c00) (f64x2.mul (local.get $a0) (local.get $b0))))
          (local.set $c01 (f64x2.add (local.get $c01) (f64x2.mul (local.get $a0) (local.get $b1))))
          (local.set $c10 (f64x2.add (local.get $c10) (f64x2.mul (local.get $a1) (local.get $b0))))
          (local.set $c11 (f64x2.add (local.get $c11) (f64x2.mul (local.get $a1) (local.get $b1))))
          (local.set $c20 (f64x2.add (local.get $c20) (f64x2.mul (local.get $a2) (local.get $b0))))
          (local.set $c21 (f64x2.add (local.get $c21) (f64x2.mul (local.get $a2) (local.get $b1))))
          (local.set $c30 (f64x2.add (local.get $c30) (f64x2.mul (local.get $a3) (local.get $b0))))
          (local.set $c31 (f64x2.add (local.get $c31) (f64x2.mul (local.get $a3) (local.get $b1))))
          (local.set $ap (i32.add (local.get $ap) (i32.const 32)))
          (local.set $bp (i32.add (local.get $bp) (i32.const 32)))
          (br $ps)))
        (local.set $c (i32.add (local.get $C) (i32.add (i32.mul (local.get $i) (local.get $rs)) (i32.shl (local.get $j) (i32.const 3)))))
        (v128.store (local.get $c) (f64x2.add (v128.load (local.get $c)) (f64x2.mul (local.get $al) (local.get $c00))))
        (v128.store offset=16 (local.get $c) (f64x2.add (v128.load offset=16 (local.get $c)) (f64x2.mul (local.get $al) (local.get $c01))))
        (local.set $c (i32.add (local.get $c) (local.get $rs)))
        (v128.store (local.get $c) (f64x2.add (v128.load (local.get $c)) (f64x2.mul (local.get $al) (local.get $c10))))
        (v128.store offset=16 (local.get $c) (f64x2.add (v128.load offset=16 (local.get $c)) (f64x2.mul (local.get $al) (local.get $c11))))
        (local.set $c (i32.add (local.get $c) (local.get $rs)))
        (v128.store (local.get $c) (f64x2.add (v128.load (local.get $c)) (f64x2.mul (local.get $al) (local.get $c20))))
        (v128.store offset=16 (local.get $c) (f64x2.add (v128.load offset=16 (local.get $c)) (f64x2.mul (local.get $al) (local.get $c21))))
        (local.set $c (i32.add (local.get $c) (local.get $rs)))
        (v128.store (local.get $c) (f64x2.add (v128.load (local.get $c)) (f64x2.mul (local.get $al) (local.get $c30))))
        (v128.store offset=16 (local.get $c) (f64x2.add (v128.load offset=16 (local.get $c)) (f64x2.mul (local.get $al) (local.get $c31))))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $js)))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br $is)))
  )

  ;; p += A·v over the symmetric block [lo, n) of row-major A (n×n, lower triangle), from its rows
  ;; [r0, r1) only (so threads can split the rows, each into its own p): p_i += Σ_{lo≤j≤i} A_ij·v_j
  ;; and p_j += A_ij·v_i for j < i. Read-only on A: the blocked reduction's matrix–vector half.
  ;; Four rows at a time: four independent accumulators keep the adds (or fused multiply-adds)
  ;; from waiting on each other, and the loads of v and the load/store of p are shared by 4 rows.
  ;; The columns the four rows share go 2 at a time; the rest of each row (its last column of the
  ;; shared block when odd, the 4×4 diagonal corner) goes through $symvRowEnd; the last 0–3 rows
  ;; through $symvRows.
  (func (export "symvLower") (param $n i32) (param $lo i32) (param $r0 i32) (param $r1 i32) (param $A i32) (param $v i32) (param $p i32)
    (local $i i32) (local $j i32) (local $stride i32) (local $row0 i32) (local $row1 i32) (local $row2 i32) (local $row3 i32) (local $off i32)
    (local $v0 v128) (local $v1 v128) (local $v2 v128) (local $v3 v128) (local $s0 v128) (local $s1 v128) (local $s2 v128) (local $s3 v128)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128) (local $vj v128) (local $at i32)
    (local.set $stride (i32.shl (local.get $n) (i32.const 3)))
    (local.set $i (local.get $r0))
    (block $doneI (loop $quads
      (br_if $doneI (i32.ge_u (i32.add (local.get $i) (i32.const 3)) (local.get $r1)))
      (local.set $row0 (i32.add (local.get $A) (i32.mul (local.get $i) (local.get $stride))))
      (local.set $row1 (i32.add (local.get $row0) (local.get $stride)))
      (local.set $row2 (i32.add (local.get $row1) (local.get $stride)))
      (local.set $row3 (i32.add (local.get $row2) (local.get $stride)))
      (local.set $at (i32.add (local.get $v) (i32.shl (local.get $i) (i32.const 3))))
      (local.set $v0 (f64x2.splat (f64.load (local.get $at))))
      (local.set $v1 (f64x2.splat (f64.load offset=8 (local.get $at))))
      (local.set $v2 (f64x2.splat (f64.load offset=16 (local.get $at))))
      (local.set $v3 (f64x2.splat (f64.load offset=24 (local.get $at))))
      (local.set $s0 (f64x2.splat (f64.const 0)))
      (local.set $s1 (f64x2.splat (f64.const 0)))
      (local.set $s2 (f64x2.splat (f64.const 0)))
      (local.set $s3 (f64x2.splat (f64.const 0)))
      (local.set $j (local.get $lo))
      (block $doneJ (loop $cols
        (br_if $doneJ (i32.ge_u (i32.add (local.get $j) (i32.const 1)) (local.get $i)))
        (local.set $off (i32.shl (local.get $j) (i32.const 3)))
        (local.set $vj (v128.load (i32.add (local.get $v) (local.get $off))))
        (local.set $a0 (v128.load (i32.add (local.get $row0) (local.get $off))))
        (local.set $a1 (v128.load (i32.add (local.get $row1) (local.get $off))))
        (local.set $a2 (v128.load (i32.add (local.get $row2) (local.get $off))))
        (local.set $a3 (v128.load (i32.add (local.get $row3) (local.get $off))))
        (local.set $s0 (f64x2.add (local.get $s0) (f64x2.mul (local.get $a0) (local.get $vj))))
        (local.set $s1 (f64x2.add (local.get $s1) (f64x2.mul (local.get $a1) (local.get $vj))))
        (local.set $s2 (f64x2.add (local.get $s2) (f64x2.mul (local.get $a2) (local.get $vj))))
        (local.set $s3 (f64x2.add (local.get $s3) (f64x2.mul (local.get $a3) (local.get $vj))))
        (v128.store (i32.add (local.get $p) (local.get $off))
          (f64x2.add (f64x2.add (f64x2.add (f64x2.add (v128.load (i32.add (local.get $p) (local.get $off)))
            (f64x2.mul (local.get $a0) (local.get $v0))) (f64x2.mul (local.get $a1) (local.get $v1)))
            (f64x2.mul (local.get $a2) (local.get $v2))) (f64x2.mul (local.get $a3) (local.get $v3))))
        (local.set $j (i32.add (local.get $j) (i32.const 2)))
        (br $cols)))
      (call $symvRowEnd (local.get $row0) (local.get $i) (local.get $j) (local.get $v) (local.get $p) (local.get $s0))
      (call $symvRowEnd (local.get $row1) (i32.add (local.get $i) (i32.const 1)) (local.get $j) (local.get $v) (local.get $p) (local.get $s1))
      (call $symvRowEnd (local.get $row2) (i32.add (local.get $i) (i32.const 2)) (local.get $j) (local.get $v) (local.get $p) (local.get $s2))
      (call $symvRowEnd (local.get $row3) (i32.add (local.get $i) (i32.const 3)) (local.get $j) (local.get $v) (local.get $p) (local.get $s3))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br $quads)))
    (if (i32.lt_u (local.get $i) (local.get $r1)) (then
      (call $symvRows (local.get $n) (local.get $lo) (local.get $i) (local.get $r1) (local.get $A) (local.get $v) (local.get $p))))
  )

  ;; The end of row i of symvLower from column j on: p_c += A_ic·v_i and the row sum += A_ic·v_c for
  ;; j ≤ c < i, then the diagonal; p_i += the row sum (the lanes of $partial plus these terms).
  (func $symvRowEnd (param $row i32) (param $i i32) (param $j i32) (param $v i32) (param $p i32) (param $partial v128)
    (local $t f64) (local $x f64) (local $vi f64) (local $off i32)
    (local.set $vi (f64.load (i32.add (local.get $v) (i32.shl (local.get $i) (i32.const 3)))))
    (local.set $t (f64.add (f64x2.extract_lane 0 (local.get $partial)) (f64x2.extract_lane 1 (local.get $partial))))
    (block $done (loop $rest
      (br_if $done (i32.ge_u (local.get $j) (local.get $i)))
      (local.set $off (i32.shl (local.get $j) (i32.const 3)))
      (local.set $x (f64.load (i32.add (local.get $row) (local.get $off))))
      (local.set $t (f64.add (local.get $t) (f64.mul (local.get $x) (f64.load (i32.add (local.get $v) (local.get $off))))))
      (f64.store (i32.add (local.get $p) (local.get $off))
        (f64.add (f64.load (i32.add (local.get $p) (local.get $off))) (f64.mul (local.get $x) (local.get $vi))))
      (local.set $j (i32.add (local.get $j) (i32.const 1)))
      (br $rest)))
    (local.set $off (i32.shl (local.get $i) (i32.const 3)))
    (f64.store (i32.add (local.get $p) (local.get $off))
      (f64.add (f64.load (i32.add (local.get $p) (local.get $off)))
        (f64.add (local.get $t) (f64.mul (f64.load (i32.add (local.get $row) (local.get $off))) (local.get $vi)))))
  )

  ;; symvLower one row at a time: the last rows that do not make a group of four.
  (func $symvRows (param $n i32) (param $lo i32) (param $r0 i32) (param $r1 i32) (param $A i32) (param $v i32) (param $p i32)
    (local $i i32) (local $j i32) (local $row i32) (local $off i32) (local $viS v128) (local $s v128) (local $a v128) (local $vi f64) (local $t f64) (local $x f64)
    (local.set $i (local.get $r0))
    (block $doneI (loop $rows
      (br_if $doneI (i32.ge_u (local.get $i) (local.get $r1)))
      (local.set $row (i32.add (local.get $A) (i32.shl (i32.mul (local.get $i) (local.get $n)) (i32.const 3))))
      (local.set $vi (f64.load (i32.add (local.get $v) (i32.shl (local.get $i) (i32.const 3)))))
      (local.set $viS (f64x2.splat (local.get $vi)))
      (local.set $s (f64x2.splat (f64.const 0)))
      (local.set $j (local.get $lo))
      (block $doneJ (loop $cols
        (br_if $doneJ (i32.ge_u (i32.add (local.get $j) (i32.const 1)) (local.get $i)))
        (local.set $off (i32.shl (local.get $j) (i32.const 3)))
        (local.set $a (v128.load (i32.add (local.get $row) (local.get $off))))
        (local.set $s (f64x2.add (local.get $s) (f64x2.mul (local.get $a) (v128.load (i32.add (local.get $v) (local.get $off))))))
        (v128.store (i32.add (local.get $p) (local.get $off))
          (f64x2.add (v128.load (i32.add (local.get $p) (local.get $off))) (f64x2.mul (local.get $a) (local.get $viS))))
        (local.set $j (i32.add (local.get $j) (i32.const 2)))
        (br $cols)))
      (local.set $t (f64.add (f64x2.extract_lane 0 (local.get $s)) (f64x2.extract_lane 1 (local.get $s))))
      (if (i32.lt_u (local.get $j) (local.get $i)) (then
        (local.set $off (i32.shl (local.get $j) (i32.const 3)))
        (local.set $x (f64.load (i32.add (local.get $row) (local.get $off))))
        (local.set $t (f64.add (local.get $t) (f64.mul (local.get $x) (f64.load (i32.add (local.get $v) (local.get $off))))))
        (f64.store (i32.add (local.get $p) (local.get $off))
          (f64.add (f64.load (i32.add (local.get $p) (local.get $off))) (f64.mul (local.get $x) (local.get $vi))))))
      (local.set $off (i32.shl (local.get $i) (i32.const 3)))
      (f64.store (i32.add (local.get $p) (local.get $off))
        (f64.add (f64.load (i32.add (local.get $p) (local.get $off)))
          (f64.add (local.get $t) (f64.mul (f64.load (i32.add (local.get $row) (local.get $off))) (local.get $vi)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $rows)))
  )

  ;; out[s] = Σ_{i<len} X[s·ld + i]·y[i] for s < count (the panel's Vᵀ·y, Wᵀ·y in the blocked reduction).
  (func (export "dotRows") (param $count i32) (param $len i32) (param $X i32) (param $ld i32) (param $y i32) (param $out i32)
    (local $s i32) (local $i i32) (local $row i32) (local $acc v128) (local $t f64)
    (block $doneS (loop $rows
      (br_if $doneS (i32.ge_u (local.get $s) (local.get $count)))
      (local.set $row (i32.add (local.get $X) (i32.shl (i32.mul (local.get $s) (local.get $ld)) (i32.const 3))))
      (local.set $acc (f64x2.splat (f64.const 0)))
      (local.set $i (i32.const 0))
      (block $doneI (loop $pairs
        (br_if $doneI (i32.ge_u (i32.add (local.get $i) (i32.const 1)) (local.get $len)))
        (local.set $acc (f64x2.add (local.get $acc) (f64x2.mul
          (v128.load (i32.add (local.get $row) (i32.shl (local.get $i) (i32.const 3))))
          (v128.load (i32.add (local.get $y) (i32.shl (local.get $i) (i32.const 3)))))))
        (local.set $i (i32.add (local.get $i) (i32.const 2)))
        (br $pairs)))
      (local.set $t (f64.add (f64x2.extract_lane 0 (local.get $acc)) (f64x2.extract_lane 1 (local.get $acc))))
      (if (i32.lt_u (local.get $i) (local.get $len)) (then
        (local.set $t (f64.add (local.get $t) (f64.mul
          (f64.load (i32.add (local.get $row) (i32.shl (local.get $i) (i32.const 3))))
          (f64.load (i32.add (local.get $y) (i32.shl (local.get $i) (i32.const 3)))))))))
      (f64.store (i32.add (local.get $out) (i32.shl (local.get $s) (i32.const 3))) (local.get $t))
      (local.set $s (i32.add (local.get $s) (i32.const 1)))
      (br $rows)))
  )

  ;; y[i] −= Σ_{s<count} coef[s]·X[s·ld + i] for i < len (the panel's corrections −V·a − W·b).
  (func (export "axpyRows") (param $count i32) (param $len i32) (param $X i32) (param $ld i32) (param $coef i32) (param $y i32)
    (local $s i32) (local $i i32) (local $row i32) (local $c f64) (local $cS v128) (local $at i32)
    (block $doneS (loop $rows
      (br_if $doneS (i32.ge_u (local.get $s) (local.get $count)))
      (local.set $c (f64.load (i32.add (local.get $coef) (i32.shl (local.get $s) (i32.const 3)))))
      (if (f64.ne (local.get $c) (f64.const 0)) (then
        (local.set $row (i32.add (local.get $X) (i32.shl (i32.mul (local.get $s) (local.get $ld)) (i32.const 3))))
        (local.set $cS (f64x2.splat (local.get $c)))
        (local.set $i (i32.const 0))
        (block $doneI (loop $pairs
          (br_if $doneI (i32.ge_u (i32.add (local.get $i) (i32.const 1)) (local.get $len)))
          (local.set $at (i32.add (local.get $y) (i32.shl (local.get $i) (i32.const 3))))
          (v128.store (local.get $at) (f64x2.sub (v128.load (local.get $at))
            (f64x2.mul (local.get $cS) (v128.load (i32.add (local.get $row) (i32.shl (local.get $i) (i32.const 3)))))))
          (local.set $i (i32.add (local.get $i) (i32.const 2)))
          (br $pairs)))
        (if (i32.lt_u (local.get $i) (local.get $len)) (then
          (local.set $at (i32.add (local.get $y) (i32.shl (local.get $i) (i32.const 3))))
          (f64.store (local.get $at) (f64.sub (f64.load (local.get $at))
            (f64.mul (local.get $c) (f64.load (i32.add (local.get $row) (i32.shl (local.get $i) (i32.const 3)))))))))))
      (local.set $s (i32.add (local.get $s) (i32.const 1)))
      (br $rows)))
  )

  ;; Packs rows × kc of row-major src (row stride $ld doubles, columns p = 0…kc−1) into 4-row
  ;; strips at dst: strip s holds src[4s+t, p] at (s·kc + p)·4 + t, the last strip padded with
  ;; zeros. With packStrips for B, gemmPacked then computes C += src·B (a plain product).
  (func (export "packRowStrips") (param $src i32) (param $ld i32) (param $rows i32) (param $kc i32) (param $dst i32)
    (local $s i32) (local $p i32) (local $t i32) (local $row i32) (local $rs i32) (local $at i32)
    (local.set $rs (i32.shl (local.get $ld) (i32.const 3)))
    (block $doneS (loop $strips
      (br_if $doneS (i32.ge_u (local.get $s) (local.get $rows)))
      (local.set $t (i32.const 0))
      (block $doneT (loop $ts
        (br_if $doneT (i32.ge_u (local.get $t) (i32.const 4)))
        (local.set $at (i32.add (local.get $dst) (i32.shl (local.get $t) (i32.const 3))))
        (if (i32.lt_u (i32.add (local.get $s) (local.get $t)) (local.get $rows))
          (then
            (local.set $row (i32.add (local.get $src) (i32.mul (i32.add (local.get $s) (local.get $t)) (local.get $rs))))
            (local.set $p (i32.const 0))
            (block $doneP (loop $ps
              (br_if $doneP (i32.ge_u (local.get $p) (local.get $kc)))
              (f64.store (local.get $at) (f64.load (i32.add (local.get $row) (i32.shl (local.get $p) (i32.const 3)))))
              (local.set $at (i32.add (local.get $at) (i32.const 32)))
              (local.set $p (i32.add (local.get $p) (i32.const 1)))
              (br $ps))))
          (else
            (local.set $p (i32.const 0))
            (block $doneZ (loop $zs
              (br_if $doneZ (i32.ge_u (local.get $p) (local.get $kc)))
              (f64.store (local.get $at) (f64.const 0))
              (local.set $at (i32.add (local.get $at) (i32.const 32)))
              (local.set $p (i32.add (local.get $p) (i32.const 1)))
              (br $zs)))))
        (local.set $t (i32.add (local.get $t) (i32.const 1)))
        (br $ts)))
      (local.set $dst (i32.add (local.get $dst) (i32.shl (local.get $kc) (i32.const 5))))
      (local.set $s (i32.add (local.get $s) (i32.const 4)))
      (br $strips)))
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
