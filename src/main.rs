mod commands;
mod connection;
mod facts;
mod inventory;
mod plan;
mod report;
mod roles;
fn main() {}
