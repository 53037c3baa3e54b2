//! `snp-measure inspect`: what a firmware image declares to the VMM.

use anyhow::Result;
use serde_json::json;
use snp_measure::Firmware;
use snp_measure::firmware::layout;

fn known_entry(g: &snp_measure::guid::Guid) -> &'static str {
    match *g {
        layout::SEV_HASH_TABLE_RV_GUID => "SEV hash table",
        layout::SEV_ES_RESET_BLOCK_GUID => "SEV-ES reset block",
        layout::SEV_METADATA_GUID => "SEV metadata",
        layout::SVSM_INFO_GUID => "SVSM info",
        _ => "",
    }
}

pub fn run(a: &crate::args::InspectArgs) -> Result<()> {
    let fw = Firmware::open(&a.ovmf)?;
    let reset = fw.sev_es_reset_eip().ok();
    let hashes = fw.sev_hashes_table_gpa().ok();
    if a.json {
        let table: Vec<_> = fw
            .table()
            .iter()
            .map(|(g, d)| json!({"guid": g.to_string(), "name": known_entry(g), "data": hex::encode(d)}))
            .collect();
        let meta: Vec<_> = fw
            .metadata()
            .iter()
            .map(|s| json!({"type": s.kind.name(), "gpa": format!("{:#x}", s.gpa), "size": s.size}))
            .collect();
        let rec = json!({
            "size": fw.len(),
            "gpa": format!("{:#x}", fw.gpa()),
            "footer_table": table,
            "sev_metadata": meta,
            "sev_es_reset_eip": reset.map(|e| format!("{e:#x}")),
            "sev_hash_table_gpa": hashes.map(|g| format!("{g:#x}")),
            "supports_kernel_hashes": fw.has_section(layout::SectionType::SnpKernelHashes),
        });
        println!("{}", serde_json::to_string_pretty(&rec)?);
        return Ok(());
    }
    println!(
        "size:               {} bytes, mapped at {:#x}",
        fw.len(),
        fw.gpa()
    );
    println!("footer table:       {} entries", fw.table().len());
    for (g, d) in fw.table() {
        println!("  {g}  {:<20} {} bytes", known_entry(g), d.len());
    }
    println!("SEV metadata:       {} sections", fw.metadata().len());
    for s in fw.metadata() {
        println!(
            "  {:<18} gpa {:#010x} size {:#x}",
            s.kind.name(),
            s.gpa,
            s.size
        );
    }
    match reset {
        Some(e) => println!("SEV-ES reset EIP:   {e:#x}"),
        None => println!("SEV-ES reset EIP:   (none: SEV-ES/SNP launches impossible)"),
    }
    match hashes {
        Some(g) => println!("SEV hash table GPA: {g:#x}"),
        None => println!("SEV hash table GPA: (none: no measured direct boot)"),
    }
    let kh = fw.has_section(layout::SectionType::SnpKernelHashes);
    println!(
        "SNP kernel hashes:  {}",
        if kh { "supported" } else { "not supported" }
    );
    Ok(())
}
