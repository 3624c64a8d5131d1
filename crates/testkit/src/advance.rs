//! Driving a deployment to a chosen state, for tests that stop it there.

use deploy_core::{AnyDeployment, DeployFailure, DeployRequest, Deployer};

/// Where [`advance`] leaves a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StopAt {
    /// After [`Deployer::begin`].
    PromptWritten,
    /// After `start_session`.
    SessionStarted,
    /// After `register`.
    Registered,
}

/// Runs a deployment of `request` up to `stop_at`, or all the way to Live with `None`.
pub fn advance<'a>(
    deployer: Deployer<'a>,
    request: DeployRequest,
    stop_at: Option<StopAt>,
) -> Result<AnyDeployment<'a>, DeployFailure> {
    let p = deployer.begin(request)?;
    if stop_at == Some(StopAt::PromptWritten) {
        return Ok(AnyDeployment::PromptWritten(p));
    }
    let s = p.start_session()?;
    if stop_at == Some(StopAt::SessionStarted) {
        return Ok(AnyDeployment::SessionStarted(s));
    }
    let r = s.register()?;
    if stop_at == Some(StopAt::Registered) {
        return Ok(AnyDeployment::Registered(r));
    }
    r.confirm_live().map(AnyDeployment::Live)
}
