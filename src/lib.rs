//! libfgbi: fine-grained block identification for VM live migration and checkpoint replication.

pub mod delta;
pub mod scan;
pub mod xbzrle;
