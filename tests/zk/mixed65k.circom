pragma circom 2.0.0;
include "lib.circom";

// The 2^16-domain fixture (65,002 constraints): a 2000-step multiplication
// chain feeding 21,000 rounds of s^5 + c (full-size witness values, the
// hard case for the MSMs).  Too big for a snarkjs powers-of-tau ceremony in
// CI: zk_fixtures.sh sets it up on a generated, known-secret .ptau.
template Mixed(chain, rounds) {
    signal input a;
    signal input b;
    signal input x;
    signal input c0;
    signal output out;
    signal output out2;
    signal output h;
    component m = MulChain(chain);
    m.a <== a;
    m.b <== b;
    m.x <== x;
    component p = Pow5Rounds(rounds);
    p.x <== m.out;
    p.c0 <== c0;
    out <== m.out;
    out2 <== m.out2;
    h <== p.out;
}

component main {public [a, b, c0]} = Mixed(2000, 21000);
