fn main() -> anyhow::Result<()> {
    anyhow::bail!("the vid2mp3 client is not built yet")
}
