pragma circom 2.0.0;

// Test circuits for the Groth16 readers, prover and verifier
// (tests/scripts/zk_fixtures.sh sets them up with snarkjs).

// n multiplication constraints: t[i] = t[i-1] * x + a, with two public
// inputs (a, b) and two outputs, so the public signals are out, out2, a, b
// (snarkjs puts outputs first) and IC has five points.
template MulChain(n) {
    signal input a;
    signal input b;
    signal input x;
    signal output out;
    signal output out2;
    signal t[n];
    t[0] <== x * x + a;
    for (var i = 1; i < n; i++) {
        t[i] <== t[i - 1] * x + a;
    }
    out <== t[n - 1];
    // a linear constraint on a public input: zero A, B entries in its row
    out2 <== b * 7 + out;
}

// A Poseidon-like permutation on one lane: rounds of s -> s^5 + c, three
// constraints a round, round constants spread over the whole field.
template Pow5Rounds(rounds) {
    signal input x;
    signal input c0;
    signal output out;
    signal s[rounds + 1];
    signal s2[rounds];
    signal s4[rounds];
    s[0] <== x + c0;
    for (var i = 0; i < rounds; i++) {
        s2[i] <== s[i] * s[i];
        s4[i] <== s2[i] * s2[i];
        s[i + 1] <== s4[i] * s[i] + 0x1234567890abcdef1234567890abcdef * (i + 1) + 21888242871839275222246405745257275088548364400416034343698204186575808495616;
    }
    out <== s[rounds];
}
