#[reflexio::retry]
async fn append(log: &mut Vec<u32>) -> Result<usize, std::io::Error> {
    log.push(1);
    Ok(log.len())
}

fn main() {
    let _ = append(&mut Vec::new());
}
