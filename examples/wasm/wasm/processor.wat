;; processor.wasm, the seed's scenario 8 module, written by hand in the shape wasm-bindgen
;; gives `#[wasm_bindgen] pub fn process_data(input: &str) -> String`: strings cross as
;; (pointer, length) in linear memory, allocated with `__wbindgen_malloc`, the result comes back
;; as two values, and errors are thrown through the `__wbindgen_throw` import.
;;
;; process_data(json) scans a JSON text and answers `{"sum":S,"count":C,"bytes":B}`: the sum and
;; the number of the integers in it (digits inside strings do not count), and its length in
;; bytes. A number with a fraction or an exponent is refused with an error.
;;
;; The binary next to this file is this text compiled with the `wat` crate; a test checks that
;; they agree (`BLESS=1 cargo test -p loader --test seed processor` rewrites the binary).
(module
  (import "wbg" "__wbindgen_throw" (func $throw (param i32 i32)))
  (memory (export "memory") 1)

  ;; Constant text, below the heap.
  (data (i32.const 64) "{\"sum\":")                                   ;; 7 bytes
  (data (i32.const 80) ",\"count\":")                                 ;; 9 bytes
  (data (i32.const 96) ",\"bytes\":")                                 ;; 9 bytes
  (data (i32.const 112) "}")                                          ;; 1 byte
  (data (i32.const 128) "process_data: only integers are supported")  ;; 41 bytes
  (data (i32.const 192) "__wbindgen_malloc: out of memory")           ;; 32 bytes
  ;; 256..288: scratch for formatting a number.

  ;; A bump allocator: the heap grows from 1024; freeing the last block gives it back.
  (global $heap (mut i32) (i32.const 1024))

  (func $malloc (export "__wbindgen_malloc") (param $size i32) (param $align i32) (result i32)
    (local $ptr i32) (local $end i32) (local $have i64) (local $need i64)
    (if (i32.eqz (local.get $align)) (then (local.set $align (i32.const 1))))
    (local.set $ptr
      (i32.and
        (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
        (i32.sub (i32.const 0) (local.get $align))))
    (local.set $end (i32.add (local.get $ptr) (local.get $size)))
    (if (i32.lt_u (local.get $end) (local.get $ptr))
      (then (call $throw (i32.const 192) (i32.const 32)) (unreachable)))
    (local.set $have (i64.mul (i64.extend_i32_u (memory.size)) (i64.const 65536)))
    (local.set $need (i64.extend_i32_u (local.get $end)))
    (if (i64.gt_u (local.get $need) (local.get $have))
      (then
        (if (i32.eq
              (memory.grow
                (i32.wrap_i64
                  (i64.shr_u
                    (i64.add (i64.sub (local.get $need) (local.get $have)) (i64.const 65535))
                    (i64.const 16))))
              (i32.const -1))
          (then (call $throw (i32.const 192) (i32.const 32)) (unreachable)))))
    (global.set $heap (local.get $end))
    (local.get $ptr))

  (func $free (export "__wbindgen_free") (param $ptr i32) (param $size i32) (param $align i32)
    (if (i32.eq (i32.add (local.get $ptr) (local.get $size)) (global.get $heap))
      (then (global.set $heap (local.get $ptr)))))

  (func $is_digit (param $c i32) (result i32)
    (i32.lt_u (i32.sub (local.get $c) (i32.const 48)) (i32.const 10)))

  ;; Writes `v` in decimal at `at`; returns where it ended.
  (func $write_i64 (param $at i32) (param $v i64) (result i32)
    (local $n i32) (local $i i32)
    (if (i64.lt_s (local.get $v) (i64.const 0))
      (then
        (i32.store8 (local.get $at) (i32.const 45))  ;; '-'
        (local.set $at (i32.add (local.get $at) (i32.const 1)))
        ;; As unsigned, the negation is right even for the smallest i64.
        (local.set $v (i64.sub (i64.const 0) (local.get $v)))))
    (loop $digit
      (i32.store8 (i32.add (i32.const 256) (local.get $n))
        (i32.add (i32.const 48) (i32.wrap_i64 (i64.rem_u (local.get $v) (i64.const 10)))))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (local.set $v (i64.div_u (local.get $v) (i64.const 10)))
      (br_if $digit (i64.ne (local.get $v) (i64.const 0))))
    (loop $copy
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (i32.store8 (local.get $at) (i32.load8_u (i32.add (i32.const 256) (local.get $n))))
      (local.set $at (i32.add (local.get $at) (i32.const 1)))
      (br_if $copy (local.get $n)))
    (local.get $at))

  ;; Copies `len` bytes of constant text from `from` to `at`; returns where it ended.
  (func $write_text (param $at i32) (param $from i32) (param $len i32) (result i32)
    (memory.copy (local.get $at) (local.get $from) (local.get $len))
    (i32.add (local.get $at) (local.get $len)))

  (func (export "process_data") (param $ptr i32) (param $len i32) (result i32 i32)
    (local $i i32) (local $c i32) (local $in_string i32) (local $escaped i32)
    (local $negative i32) (local $digits i32) (local $value i64)
    (local $sum i64) (local $count i32) (local $out i32) (local $at i32)
    (block $scanned
      (loop $next
        (br_if $scanned (i32.ge_u (local.get $i) (local.get $len)))
        (local.set $c (i32.load8_u (i32.add (local.get $ptr) (local.get $i))))
        (if (local.get $in_string)
          (then
            (if (local.get $escaped)
              (then (local.set $escaped (i32.const 0)))
              (else
                (if (i32.eq (local.get $c) (i32.const 92))        ;; '\'
                  (then (local.set $escaped (i32.const 1)))
                  (else
                    (if (i32.eq (local.get $c) (i32.const 34))    ;; '"'
                      (then (local.set $in_string (i32.const 0))))))))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $next)))
        (if (i32.eq (local.get $c) (i32.const 34))
          (then
            (local.set $in_string (i32.const 1))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $next)))
        (if (i32.or (i32.eq (local.get $c) (i32.const 45)) (call $is_digit (local.get $c)))
          (then
            (local.set $negative (i32.eq (local.get $c) (i32.const 45)))
            (if (local.get $negative)
              (then (local.set $i (i32.add (local.get $i) (i32.const 1)))))
            (local.set $value (i64.const 0))
            (local.set $digits (i32.const 0))
            (block $number
              (loop $more
                (br_if $number (i32.ge_u (local.get $i) (local.get $len)))
                (local.set $c (i32.load8_u (i32.add (local.get $ptr) (local.get $i))))
                (br_if $number (i32.eqz (call $is_digit (local.get $c))))
                (local.set $value
                  (i64.add (i64.mul (local.get $value) (i64.const 10))
                    (i64.extend_i32_u (i32.sub (local.get $c) (i32.const 48)))))
                (local.set $digits (i32.add (local.get $digits) (i32.const 1)))
                (local.set $i (i32.add (local.get $i) (i32.const 1)))
                (br $more)))
            (if (i32.and
                  (i32.lt_u (local.get $i) (local.get $len))
                  (i32.or (i32.eq (local.get $c) (i32.const 46))              ;; '.'
                    (i32.eq (i32.or (local.get $c) (i32.const 32)) (i32.const 101))))  ;; 'e' 'E'
              (then
                (call $free (local.get $ptr) (local.get $len) (i32.const 1))
                (call $throw (i32.const 128) (i32.const 41))
                (unreachable)))
            (if (local.get $digits)
              (then
                (local.set $sum
                  (i64.add (local.get $sum)
                    (select (i64.sub (i64.const 0) (local.get $value)) (local.get $value)
                      (local.get $negative))))
                (local.set $count (i32.add (local.get $count) (i32.const 1)))))
            (br $next)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    ;; The input is the last allocation: give it back (as Rust drops a `&str` argument's
    ;; buffer), then write the answer in a fresh one.
    (call $free (local.get $ptr) (local.get $len) (i32.const 1))
    (local.set $out (call $malloc (i32.const 80) (i32.const 1)))
    (local.set $at (call $write_text (local.get $out) (i32.const 64) (i32.const 7)))
    (local.set $at (call $write_i64 (local.get $at) (local.get $sum)))
    (local.set $at (call $write_text (local.get $at) (i32.const 80) (i32.const 9)))
    (local.set $at (call $write_i64 (local.get $at) (i64.extend_i32_u (local.get $count))))
    (local.set $at (call $write_text (local.get $at) (i32.const 96) (i32.const 9)))
    (local.set $at (call $write_i64 (local.get $at) (i64.extend_i32_u (local.get $len))))
    (local.set $at (call $write_text (local.get $at) (i32.const 112) (i32.const 1)))
    ;; The answer is shorter than the 80 bytes asked: give back the rest.
    (global.set $heap (local.get $at))
    (local.get $out)
    (i32.sub (local.get $at) (local.get $out))))
