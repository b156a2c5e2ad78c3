//! libfgbi: fine-grained block identification for VM live migration and checkpoint replication.

pub mod scan;
pub mod delta;
pub mod xbzrle;
