//! The simulated IB Gateway: a TCP server speaking the TWS API protobuf protocol, with a
//! deterministic synthetic option market and IB's pacing rules, errors and faults.
