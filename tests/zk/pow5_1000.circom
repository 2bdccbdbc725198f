pragma circom 2.0.0;
include "lib.circom";
component main {public [c0]} = Pow5Rounds(333);
