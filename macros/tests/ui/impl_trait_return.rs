#[reflexio::retry]
fn shown(n: u32) -> Result<impl std::fmt::Display, std::io::Error> {
    Ok(n)
}

fn main() {
    let _ = shown(1);
}
