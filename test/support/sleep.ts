/**
 * The tests' one sleep (and the bench's), for polling loops that wait on background work or on real
 * time (`wrangler dev`'s alarms, a receiver's retries). Not for waiting on an alarm inside workerd:
 * run it with `runDurableObjectAlarm` instead. Runs in workerd and in Node alike.
 */
export const sleep = (ms: number): Promise<void> => new Promise((done) => setTimeout(done, ms));
