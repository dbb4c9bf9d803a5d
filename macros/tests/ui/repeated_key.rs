#[reflexio::retry(operation = "fetch", operation = "load")]
fn fetch() -> Result<u32, std::io::Error> {
    Ok(1)
}

fn main() {
    let _ = fetch();
}
