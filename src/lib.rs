//! libfgbi: fine-grained block identification for VM live migration and checkpoint replication.
