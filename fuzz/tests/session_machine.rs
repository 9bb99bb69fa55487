//! The session state-machine fuzzer on stable Rust, deterministic: fixed operation sequences
//! that reach every operation, then pseudo-random inputs from a fixed seed, so a failure
//! reproduces from its round number. Coverage-guided runs: `bash scripts/fuzz.sh 600
//! session_machine`.

use capnweb_fuzz::session_machine;

/// Deterministic xorshift.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn every_operation_alone_and_in_pairs_keeps_the_invariants() {
    for op in 0u8..16 {
        for param in [0u8, 1, 2, 3, 7, 255] {
            session_machine(&[op, param, param, param, param]);
            for next in 0u8..16 {
                session_machine(&[op, param, 1, 2, 3, next, param, 2, 1, 0]);
            }
        }
    }
}

#[test]
fn a_pipe_flooded_past_the_budget_keeps_the_invariants() {
    // ["pipe"], then writes of 20*256 bytes nobody reads, past the 64 KiB session buffer.
    let mut input = vec![8];
    for _ in 0..20 {
        input.extend_from_slice(&[9, 20, 0]);
    }
    let report = session_machine(&input);
    assert_eq!(
        report.refusal,
        Some(capnweb::Refusal::Aborted),
        "the flood is refused: {report:?}"
    );
    assert!(report.peak_buffered > 0, "{report:?}");
}

#[test]
fn random_sequences_keep_the_invariants() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let rounds: usize = std::env::var("SESSION_FUZZ_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let (mut steps, mut live, mut refused, mut buffered) = (0, 0, 0, 0);
    for _ in 0..rounds {
        let len = 8 + (rng.next() % 120) as usize;
        let input: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let r = session_machine(&input);
        steps += r.steps;
        live = live.max(r.peak_live);
        refused += usize::from(r.refusal.is_some());
        buffered = buffered.max(r.peak_buffered);
    }
    // The runs reach real work: objects made, bytes buffered, sessions refused.
    eprintln!("{rounds} runs: {steps} steps, {refused} refused, peak {live} live objects, peak {buffered} bytes buffered");
    assert!(steps > rounds * 3, "{steps} steps");
    assert!(live > 1, "no counter was ever made");
    assert!(buffered > 0, "no byte was ever buffered");
    assert!(refused > 0, "no session was ever refused");
}
