// Quay's DataModelException: rule violations found deep in its data layer (a team that is not in
// the org, a robot that does not exist, removing the last admin). Quay's API does not wrap these in
// its ApiError envelope: they reach the client as a bare 400 {"message": …}. Model code throws this
// where Quay raises one, and the HTTP face keeps the bare body.
import { DomainError } from './errors.ts';

export class DataModelError extends DomainError {
  constructor(message: string) {
    super('invalid_request', message);
    this.name = 'DataModelError';
  }
}
