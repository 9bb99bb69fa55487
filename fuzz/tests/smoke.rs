//! The fuzz harness on stable Rust: every seed, then deterministic mutations of them, so CI
//! exercises exactly what `cargo fuzz run decode_message` would, without a nightly toolchain.

use capnweb_fuzz::{decode_message, seeds};

/// Deterministic xorshift, so a failure reproduces from its round number.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn every_seed_passes_the_harness() {
    let seeds = seeds();
    assert!(seeds.len() >= 10, "the seed corpus is missing");
    for seed in &seeds {
        decode_message(seed);
    }
}

#[test]
fn mutated_seeds_never_panic_or_hang() {
    let alphabet: &[u8] = b"[]{}\",:-0123456789abcdefghijklmnopqrstuvwxyz \\\xff";
    let seeds = seeds();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..5_000 {
        let mut msg = seeds[rng.below(seeds.len())].clone();
        for _ in 0..=rng.below(4) {
            let pos = rng.below(msg.len() + 1);
            let byte = alphabet[rng.below(alphabet.len())];
            match rng.below(4) {
                0 if pos < msg.len() => msg[pos] = byte,
                1 if pos < msg.len() => {
                    msg.remove(pos);
                }
                2 => {
                    // Splice in a piece of another seed: reaches deeper structure than bytes.
                    let other = &seeds[rng.below(seeds.len())];
                    let from = rng.below(other.len());
                    let to = from + rng.below(other.len() - from + 1);
                    msg.splice(pos..pos, other[from..to].iter().copied());
                }
                _ => msg.insert(pos, byte),
            }
        }
        decode_message(&msg);
    }
}
