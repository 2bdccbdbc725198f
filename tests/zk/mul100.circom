pragma circom 2.0.0;
include "lib.circom";
component main {public [a, b]} = MulChain(100);
