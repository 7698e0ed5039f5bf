//! The one integration-test binary: drives the real `ibapi` client over TCP against the
//! in-process simulated gateway, and reads real Parquet back with polars.
mod discover;
mod emptyend;
mod exec;
mod hours;
mod html;
mod lake;
mod lakeio;
mod nearatm;
mod ops;
mod plan;
mod readme;
mod signals;
mod sim;
mod support;
mod timescale;
