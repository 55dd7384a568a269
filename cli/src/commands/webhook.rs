//! webhook set | show | remove.

use super::Context;
use crate::cli_args::WebhookAction;

pub async fn run(ctx: &Context, action: WebhookAction) -> anyhow::Result<()> {
    let api = ctx.authed()?;
    match action {
        WebhookAction::Set { url } => {
            let set = api.set_webhook(&url).await?;
            if ctx.out.is_json() {
                ctx.out.json_value(&set);
                return Ok(());
            }
            ctx.out.text(&format!(
                "webhook: {}\nsecret:  {}",
                set["url"].as_str().unwrap_or("-"),
                set["secret"].as_str().unwrap_or("-")
            ));
            ctx.out.note(
                "Keep the secret now: it is not shown again (set the webhook again for a new one). \
                 Verify each delivery's webhook-signature with it.",
            );
        }
        WebhookAction::Show => {
            let shown = api.webhook().await?;
            if ctx.out.is_json() {
                ctx.out.json_value(&shown);
            } else {
                ctx.out.text(&format!(
                    "webhook: {}\nset:     {}",
                    shown["url"].as_str().unwrap_or("-"),
                    shown["created_at"].as_str().unwrap_or("-")
                ));
            }
        }
        WebhookAction::Remove => {
            api.remove_webhook().await?;
            ctx.out.note("Webhook removed: no more deliveries.");
        }
    }
    Ok(())
}
