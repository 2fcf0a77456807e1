// What the scripts driven by the e2e tests share: reading their environment and reporting an error.

export function required(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`environment variable ${name} is not set`);
  }
  return value;
}

export function describe(error) {
  const described = {
    statusCode: error?.statusCode ?? null,
    code: error?.code ?? error?.name ?? null,
    message: error?.message ?? String(error),
  };
  if (error?.body !== undefined && error?.body !== null) {
    described.body = typeof error.body === "string" ? error.body : JSON.stringify(error.body);
  }
  return described;
}
