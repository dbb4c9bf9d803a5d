#[reflexio::retry]
fn greet(name: impl std::fmt::Display) -> Result<String, std::io::Error> {
    Ok(format!("hello {name}"))
}

fn main() {
    let _ = greet("ada");
}
