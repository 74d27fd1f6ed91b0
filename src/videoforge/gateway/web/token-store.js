// Where the refresh token lives between page loads.
//
// localStorage is the quick, synchronous "is anyone signed in?" hint, but it is not
// consistent across tabs in the moment (each renderer caches it and learns of other tabs'
// writes asynchronously). Refresh tokens rotate on every use, so the tab that refreshes
// next must read the token the previous tab *just* stored: the authoritative copy is kept
// in IndexedDB, whose committed transactions every tab sees at once.

const KEY = "vf.refresh_token";
const DB_NAME = "videoforge";
const STORE = "session";
let dbPromise = null;

function openDb() {
  if (!("indexedDB" in window)) return Promise.reject(new Error("no IndexedDB"));
  dbPromise ??= new Promise((resolve, reject) => {
    const req = indexedDB.open(DB_NAME, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  }).catch((err) => {
    dbPromise = null;
    throw err;
  });
  return dbPromise;
}

function transact(mode, work) {
  return openDb().then(
    (db) =>
      new Promise((resolve, reject) => {
        const tx = db.transaction(STORE, mode);
        const result = work(tx.objectStore(STORE));
        // Resolve on commit, so a value written here is visible to the next lock holder.
        tx.oncomplete = () => resolve(result.result ?? null);
        tx.onerror = () => reject(tx.error);
        tx.onabort = () => reject(tx.error);
      }),
  );
}

/** The hint: is a refresh token stored (synchronous, may lag other tabs briefly)? */
export function hint() {
  try {
    return localStorage.getItem(KEY);
  } catch {
    return null;
  }
}

/** The current refresh token, as committed by any tab. */
export async function read() {
  try {
    const value = await transact("readonly", (store) => store.get(KEY));
    return value ?? hint();
  } catch {
    return hint(); // IndexedDB unavailable (some private modes): the hint is all we have
  }
}

/** Store (or with null, forget) the refresh token; resolves once every tab can see it. */
export async function write(token) {
  try {
    if (token) localStorage.setItem(KEY, token);
    else localStorage.removeItem(KEY);
  } catch {
    // Storage disabled: the session lasts as long as this page.
  }
  try {
    await transact("readwrite", (store) => (token ? store.put(token, KEY) : store.delete(KEY)));
  } catch {
    // Without IndexedDB the localStorage copy is used.
  }
}

export const STORAGE_KEY = KEY;
