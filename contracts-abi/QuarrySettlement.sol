// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.28;

/// @title QuarrySettlement
/// @notice On-chain mirror of the Quarry broker's settlements.  Clients
/// deposit ether, operators stake it; the broker posts, per batch of settled
/// jobs, the Merkle root of their settlement records.  Anyone can check a
/// record against its batch, and an operator claims the amount of each of
/// its records from the client's deposit with the record's proof.  The
/// broker can slash an operator's stake, giving a reason.
/// @dev Leaves and proofs follow common/chain/merkle.h in Quarry:
///   leaf = keccak256(bytes.concat(keccak256(abi.encode(
///              uint64 jobId, address client, address operator, uint256 amount))))
/// and pairs hash in sorted order, keccak256(min(a, b) ++ max(a, b)).  Hashing
/// the leaf twice keeps a 64-byte inner node from passing as a leaf.
/// Everything is checked inline; no library is imported.
contract QuarrySettlement {
    /// @notice The broker's key: the only sender of postBatch and slash.
    address public immutable broker;

    /// @notice Ether each client has deposited and not yet had claimed.
    mapping(address => uint256) public deposits;
    /// @notice Ether each operator has staked, less what was slashed.
    mapping(address => uint256) public stakes;
    /// @notice Merkle root of each posted batch, by batch id.
    mapping(uint64 => bytes32) public batchRoots;
    /// @notice The id the next postBatch must carry; batches are numbered
    /// 0, 1, 2... so a resent postBatch cannot post the same batch twice.
    uint64 public nextBatchId;
    /// @notice Ether taken from stakes by slash, held by the contract.
    uint256 public slashedTotal;
    /// @dev One bit per job id: set once the job's amount has been claimed,
    /// whichever batch carried it.
    mapping(uint256 => uint256) private claimedBits;

    event Deposited(address indexed client, uint256 amount, uint256 balance);
    event Staked(address indexed operator, uint256 amount, uint256 stake);
    event BatchPosted(uint64 indexed batchId, bytes32 root, uint32 count);
    event Claimed(
        uint64 indexed batchId, uint64 indexed jobId, address indexed operator, address client, uint256 amount
    );
    event Slashed(address indexed operator, uint256 amount, string reason);

    error NotBroker();
    error ZeroAddress();
    error ZeroAmount();
    error EmptyRoot();
    error BatchOutOfOrder(uint64 expected, uint64 given);
    error UnknownBatch(uint64 batchId);
    error InvalidProof();
    error AlreadyClaimed(uint64 jobId);
    error InsufficientDeposit(address client, uint256 available, uint256 needed);
    error InsufficientStake(address operator, uint256 available, uint256 needed);
    error TransferFailed();

    modifier onlyBroker() {
        if (msg.sender != broker) revert NotBroker();
        _;
    }

    constructor(address broker_) {
        if (broker_ == address(0)) revert ZeroAddress();
        broker = broker_;
    }

    /// @notice Adds msg.value to the sender's client deposit.
    function deposit() external payable {
        if (msg.value == 0) revert ZeroAmount();
        uint256 balance = deposits[msg.sender] + msg.value;
        deposits[msg.sender] = balance;
        emit Deposited(msg.sender, msg.value, balance);
    }

    /// @notice Adds msg.value to the sender's operator stake.
    function stake() external payable {
        if (msg.value == 0) revert ZeroAmount();
        uint256 total = stakes[msg.sender] + msg.value;
        stakes[msg.sender] = total;
        emit Staked(msg.sender, msg.value, total);
    }

    /// @notice Records the Merkle root of batch batchId, which must be the
    /// next in sequence; count is the number of records, for the event.
    function postBatch(uint64 batchId, bytes32 root, uint32 count) external onlyBroker {
        if (batchId != nextBatchId) revert BatchOutOfOrder(nextBatchId, batchId);
        if (root == bytes32(0)) revert EmptyRoot();
        batchRoots[batchId] = root;
        unchecked {
            nextBatchId = batchId + 1;
        }
        emit BatchPosted(batchId, root, count);
    }

    /// @notice The leaf hash of one settlement record.
    function settlementLeaf(uint64 jobId, address client, address operator, uint256 amount)
        public
        pure
        returns (bytes32)
    {
        return keccak256(bytes.concat(keccak256(abi.encode(jobId, client, operator, amount))));
    }

    /// @notice True when the record is in batch batchId according to proof.
    function verifySettlement(
        uint64 batchId,
        uint64 jobId,
        address client,
        address operator,
        uint256 amount,
        bytes32[] calldata proof
    ) external view returns (bool) {
        bytes32 root = batchRoots[batchId];
        if (root == bytes32(0)) return false;
        return _verify(proof, root, settlementLeaf(jobId, client, operator, amount));
    }

    /// @notice True once job jobId has been claimed.
    function isClaimed(uint64 jobId) public view returns (bool) {
        return claimedBits[jobId >> 8] & (uint256(1) << (jobId & 0xff)) != 0;
    }

    /// @notice Pays the sender (the record's operator) the amount of one
    /// settlement record from the client's deposit.
    function claim(uint64 batchId, uint64 jobId, address client, uint256 amount, bytes32[] calldata proof)
        external
    {
        bytes32 root = batchRoots[batchId];
        if (root == bytes32(0)) revert UnknownBatch(batchId);
        if (!_verify(proof, root, settlementLeaf(jobId, client, msg.sender, amount))) revert InvalidProof();
        uint256 word = jobId >> 8;
        uint256 bit = uint256(1) << (jobId & 0xff);
        uint256 bits = claimedBits[word];
        if (bits & bit != 0) revert AlreadyClaimed(jobId);
        uint256 available = deposits[client];
        if (available < amount) revert InsufficientDeposit(client, available, amount);
        // effects before the transfer, so a re-entering operator finds the
        // job claimed and the deposit already reduced
        claimedBits[word] = bits | bit;
        unchecked {
            deposits[client] = available - amount;
        }
        emit Claimed(batchId, jobId, msg.sender, client, amount);
        (bool ok,) = payable(msg.sender).call{value: amount}("");
        if (!ok) revert TransferFailed();
    }

    /// @notice Takes amount from an operator's stake, for the reason given.
    function slash(address operator, uint256 amount, string calldata reason) external onlyBroker {
        if (amount == 0) revert ZeroAmount();
        uint256 available = stakes[operator];
        if (available < amount) revert InsufficientStake(operator, available, amount);
        unchecked {
            stakes[operator] = available - amount;
        }
        slashedTotal += amount;
        emit Slashed(operator, amount, reason);
    }

    function _verify(bytes32[] calldata proof, bytes32 root, bytes32 leaf) private pure returns (bool) {
        bytes32 h = leaf;
        for (uint256 i = 0; i < proof.length; ++i) {
            bytes32 p = proof[i];
            h = h <= p ? keccak256(abi.encodePacked(h, p)) : keccak256(abi.encodePacked(p, h));
        }
        return h == root;
    }
}
