struct Client;

impl Client {
    #[reflexio::retry]
    fn fetch(self) -> Result<u32, std::io::Error> {
        Ok(1)
    }
}

fn main() {
    let _ = Client.fetch();
}
