//! The function's cold start: its configuration and token, read once, before the first event.

use super::Lambda;
use crate::{Config, config_file};

/// Where the configuration and the token come from, as named by the environment:
/// - `SIDECAR_INJECTOR_CONFIG_PARAMETER`: an SSM parameter holding the configuration; else
///   `SIDECAR_INJECTOR_CONFIG_FILE`; else `config.yaml` beside the binary (shipped in the zip);
///   else the built-in configuration;
/// - `SIDECAR_INJECTOR_TOKEN_PARAMETER`: an SSM SecureString holding the token (two, one per line,
///   during a rotation); else `SIDECAR_INJECTOR_TOKEN`.
///
/// A parameter name may end in `:VERSION`, as Terraform and deploy.sh set them: a new version is
/// then a new environment, which Lambda rolls out by replacing every instance, so that no warm
/// instance keeps an old configuration or token, and a cold start never reads a newer one early.
pub async fn cold_start() -> Result<Lambda, String> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let config_parameter = var("SIDECAR_INJECTOR_CONFIG_PARAMETER");
    let token_parameter = var("SIDECAR_INJECTOR_TOKEN_PARAMETER");
    let ssm = match (&config_parameter, &token_parameter) {
        (None, None) => None,
        _ => Some(aws_sdk_ssm::Client::new(&sdk_config().await)),
    };

    let config = match (&ssm, config_parameter) {
        (Some(ssm), Some(name)) => {
            let text = parameter(ssm, &name).await?;
            Config::from_yaml(&text).map_err(|e| format!("SSM parameter {name}: {e}"))?
        }
        _ => {
            let shipped =
                std::env::current_exe().ok().and_then(|exe| Some(exe.parent()?.join("config.yaml")));
            match var("SIDECAR_INJECTOR_CONFIG_FILE")
                .map(std::path::PathBuf::from)
                .or(shipped.filter(|p| p.exists()))
            {
                Some(path) => config_file::load(&path).map_err(|e| e.to_string())?,
                None => Config::builtin(),
            }
        }
    };
    let token = match (&ssm, token_parameter) {
        (Some(ssm), Some(name)) => parameter(ssm, &name).await?,
        _ => var("SIDECAR_INJECTOR_TOKEN")
            .ok_or("neither SIDECAR_INJECTOR_TOKEN_PARAMETER nor SIDECAR_INJECTOR_TOKEN is set")?,
    };
    Lambda::new(config, &token)
}

/// The SDK's configuration from the environment (region, credentials, endpoint), with an HTTPS
/// client on rustls and ring rather than the SDK's default aws-lc.
async fn sdk_config() -> aws_config::SdkConfig {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    let https =
        aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https();
    aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(https).load().await
}

/// One parameter's value, decrypted if it is a SecureString.
async fn parameter(ssm: &aws_sdk_ssm::Client, name: &str) -> Result<String, String> {
    let output = ssm
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| format!("SSM parameter {name}: {}", aws_sdk_ssm::error::DisplayErrorContext(e)))?;
    output.parameter.and_then(|p| p.value).ok_or_else(|| format!("SSM parameter {name} has no value"))
}
