export type RegistrationEvent = 'lost' | 'registered' | 'revoked';

/**
 * The listener bookkeeping behind `Registration.on/off`, shared by the etcd and memory registrations. Listeners
 * run in the order they were added, each exactly once per event; one added during an emit waits for the next.
 * With `onListenerError`, a throwing listener is reported and the others still run (the etcd registration must not
 * let an owner's bug stop its re-registration loop); without it, the error propagates to the emitter.
 */
export class RegistrationListeners {
  private readonly byEvent = new Map<RegistrationEvent, Set<() => void>>();

  constructor(private readonly onListenerError?: (event: RegistrationEvent, error: unknown) => void) {}

  add(event: RegistrationEvent, listener: () => void): void {
    let set = this.byEvent.get(event);
    if (!set) this.byEvent.set(event, (set = new Set()));
    set.add(listener);
  }

  remove(event: RegistrationEvent, listener: () => void): void {
    this.byEvent.get(event)?.delete(listener);
  }

  emit(event: RegistrationEvent): void {
    for (const listener of [...(this.byEvent.get(event) ?? [])]) {
      if (!this.onListenerError) {
        listener();
        continue;
      }
      try {
        listener();
      } catch (error) {
        this.onListenerError(event, error);
      }
    }
  }
}
