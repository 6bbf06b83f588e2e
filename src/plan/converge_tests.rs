use bollard::models::{
    ObjectVersion, ServiceJobStatus, ServiceSpec, ServiceSpecMode, ServiceSpecModeReplicated,
    ServiceSpecModeReplicatedJob, ServiceUpdateStatus, TaskSpec, TaskSpecContainerSpec, TaskStatus,
};

use super::*;

fn spec(image: &str) -> TaskSpec {
    TaskSpec {
        container_spec: Some(TaskSpecContainerSpec { image: Some(image.into()), ..Default::default() }),
        ..Default::default()
    }
}

fn replicated(id: &str, image: &str, replicas: i64) -> Service {
    Service {
        id: Some(id.into()),
        spec: Some(ServiceSpec {
            name: Some(format!("app_{id}")),
            task_template: Some(spec(image)),
            mode: Some(ServiceSpecMode {
                replicated: Some(ServiceSpecModeReplicated { replicas: Some(replicas) }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn task(service: &str, image: &str, desired: TaskState, state: TaskState) -> Task {
    Task {
        service_id: Some(service.into()),
        spec: Some(spec(image)),
        desired_state: Some(desired),
        status: Some(TaskStatus { state: Some(state), ..Default::default() }),
        node_id: Some("n1".into()),
        slot: Some(1),
        ..Default::default()
    }
}

fn nodes() -> BTreeMap<String, String> {
    [("n1".to_string(), "w1".to_string())].into()
}

use TaskState::{COMPLETE, FAILED, REJECTED, RUNNING, SHUTDOWN, STARTING};

#[test]
fn replicas_of_the_current_spec_running_is_converged() {
    let services = [replicated("web", "app:2", 2)];
    let tasks = [task("web", "app:2", RUNNING, RUNNING), task("web", "app:2", RUNNING, RUNNING)];
    assert_eq!(judge(&services, &tasks, &nodes()), Verdict::Converged);
}

#[test]
fn old_tasks_running_right_after_an_update_do_not_count() {
    // The deploy changed the image; the swarm has not started the new tasks yet, and the old
    // ones still run: counting them would call the stack converged.
    let services = [replicated("web", "app:2", 2)];
    let tasks = [task("web", "app:1", RUNNING, RUNNING), task("web", "app:1", RUNNING, RUNNING)];
    assert_eq!(judge(&services, &tasks, &nodes()), Verdict::Waiting(vec!["service app_web: 0/2".into()]));
    let tasks = [
        task("web", "app:1", SHUTDOWN, RUNNING),
        task("web", "app:2", RUNNING, RUNNING),
        task("web", "app:2", RUNNING, STARTING),
    ];
    assert_eq!(judge(&services, &tasks, &nodes()), Verdict::Waiting(vec!["service app_web: 1/2".into()]));
}

#[test]
fn failed_tasks_are_named_while_waiting() {
    let services = [replicated("web", "missing:1", 1)];
    let mut rejected = task("web", "missing:1", RUNNING, REJECTED);
    rejected.status.as_mut().unwrap().err = Some("No such image: missing:1".into());
    let Verdict::Waiting(why) = judge(&services, &[rejected], &nodes()) else { panic!("waiting expected") };
    assert_eq!(why, ["service app_web: 0/1", "  task app_web.1 on w1: rejected: No such image: missing:1"]);
}

#[test]
fn an_update_under_way_waits_and_a_paused_or_rolled_back_one_fails() {
    let mut service = replicated("web", "app:2", 1);
    let tasks = [task("web", "app:2", RUNNING, RUNNING)];
    service.update_status = Some(ServiceUpdateStatus { state: Some(Update::UPDATING), ..Default::default() });
    assert!(matches!(judge(&[service.clone()], &tasks, &nodes()), Verdict::Waiting(_)));
    for state in [Update::PAUSED, Update::ROLLBACK_COMPLETED] {
        service.update_status = Some(ServiceUpdateStatus {
            state: Some(state),
            message: Some("update paused due to failure".into()),
            ..Default::default()
        });
        let Verdict::Failed(why) = judge(&[service.clone()], &tasks, &nodes()) else { panic!("{state}") };
        assert!(why[0].contains(&format!("ended as '{state}'")), "{why:?}");
    }
    service.update_status =
        Some(ServiceUpdateStatus { state: Some(Update::COMPLETED), ..Default::default() });
    assert_eq!(judge(&[service], &tasks, &nodes()), Verdict::Converged);
}

#[test]
fn a_job_is_done_when_its_current_iteration_completed() {
    let mut job = replicated("migrate", "tool:1", 0);
    job.spec.as_mut().unwrap().mode = Some(ServiceSpecMode {
        replicated_job: Some(ServiceSpecModeReplicatedJob {
            max_concurrent: Some(1),
            total_completions: Some(1),
        }),
        ..Default::default()
    });
    job.job_status = Some(ServiceJobStatus {
        job_iteration: Some(ObjectVersion { index: Some(7) }),
        ..Default::default()
    });
    let mut running = task("migrate", "tool:1", COMPLETE, RUNNING);
    running.job_iteration = Some(ObjectVersion { index: Some(7) });
    assert!(matches!(judge(&[job.clone()], &[running.clone()], &nodes()), Verdict::Waiting(_)));
    let mut done = running.clone();
    done.status = Some(TaskStatus { state: Some(COMPLETE), ..Default::default() });
    assert_eq!(judge(&[job.clone()], &[done.clone()], &nodes()), Verdict::Converged);
    // A completion of an earlier run of the job does not count.
    done.job_iteration = Some(ObjectVersion { index: Some(6) });
    assert!(matches!(judge(&[job], &[done], &nodes()), Verdict::Waiting(_)));
}

#[test]
fn nothing_listed_is_not_converged() {
    assert!(matches!(judge(&[], &[], &nodes()), Verdict::Waiting(_)));
    let failed = task("web", "app:2", RUNNING, FAILED);
    assert!(matches!(judge(&[replicated("web", "app:2", 1)], &[failed], &nodes()), Verdict::Waiting(_)));
}

#[test]
fn defaults_the_engine_fills_in_the_service_only_do_not_make_its_tasks_old() {
    // As Docker shows them: the service's template with a stop grace period, a restart
    // policy and a runtime; its tasks' copies without.
    let mut services = [replicated("web", "app:2", 1)];
    let template = services[0].spec.as_mut().unwrap().task_template.as_mut().unwrap();
    template.container_spec.as_mut().unwrap().stop_grace_period = Some(10_000_000_000);
    template.runtime = Some("container".into());
    template.restart_policy = Some(bollard::models::TaskSpecRestartPolicy {
        condition: Some(bollard::models::TaskSpecRestartPolicyConditionEnum::ANY),
        ..Default::default()
    });
    let tasks = [task("web", "app:2", RUNNING, RUNNING)];
    assert_eq!(judge(&services, &tasks, &nodes()), Verdict::Converged);
}
